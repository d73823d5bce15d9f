// Levee: the quadratic funding pages. Sends the forms to the JSON API and
// estimates, as a resident types, the match a contribution would bring.
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;



  // localISO turns a datetime-local value into RFC 3339 UTC, or '' if empty.
  function localISO(form, name, message) {
    var v = form.elements[name].value;
    if (!v) return '';
    var d = new Date(v);
    if (isNaN(d)) throw new L.ApiError(400, 'invalid', message, name);
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // New round (treasurers).
  var nr = document.getElementById('new-round');
  if (nr) {
    L.submitForm(nr, 'Opening…', function () {
      var body = {
        title: nr.elements.title.value.trim(),
        pool: nr.elements.pool.value.trim(),
        cap_share: nr.elements.cap_share.value.trim(),
        eligibility_rules: nr.elements.eligibility_rules.value.trim(),
        opens_at: localISO(nr, 'opens_at', 'Choose when contributions open.'),
        closes_at: localISO(nr, 'closes_at', 'Choose when contributions close.')
      };
      if (!body.closes_at) throw new L.ApiError(400, 'invalid', 'Choose when contributions close.', 'closes_at');
      return L.api('POST', '/api/v1/qf/rounds', body);
    }, function (r) { location.assign('/rounds/' + encodeURIComponent(r.id)); });
  }

  var root = document.getElementById('round');
  if (!root) return;
  var roundID = root.dataset.round;
  function reload() { location.reload(); }

  var pf = document.getElementById('propose');
  if (pf) {
    L.submitForm(pf, 'Proposing…', function () {
      return L.api('POST', '/api/v1/qf/rounds/' + roundID + '/projects', {
        title: pf.elements.title.value.trim(),
        description: pf.elements.description.value.trim(),
        district: pf.elements.district.value,
        estimated_cost: pf.elements.estimated_cost.value.trim()
      });
    }, reload);
  }

  document.querySelectorAll('form.eligibility').forEach(function (form) {
    L.submitForm(form, 'Saving…', function (button) {
      return L.api('POST', '/api/v1/qf/projects/' + form.dataset.project + '/eligibility', {
        eligible: button.dataset.eligible === 'true',
        reason: form.elements.reason.value.trim()
      });
    }, reload);
  });

  var fin = document.getElementById('finalize-round');
  if (fin) {
    fin.addEventListener('click', async function () {
      if (fin.disabled) return;
      L.clearError();
      L.busy(fin, true, 'Finalising…');
      try {
        await L.api('POST', '/api/v1/qf/rounds/' + roundID + '/finalize');
        reload();
      } catch (err) {
        L.busy(fin, false);
        L.showError(err);
      }
    });
  }

  // The estimate. The round's API gives each project's total and number of
  // contributors, not each person's total, so the others are taken to have
  // given equal amounts; the caller's own total comes with the page.
  var pool = Number(root.dataset.pool);
  var cap = Number(root.dataset.cap);
  var projects = {}; // id → {eligible, n, total, mine}
  document.querySelectorAll('.project').forEach(function (el) {
    projects[el.dataset.project] = {
      eligible: el.dataset.eligibility === 'eligible',
      n: Number(el.dataset.contributors),
      total: Number(el.dataset.contributed),
      mine: Number(el.dataset.mine)
    };
  });

  // rawOf is (Σ√c)² − Σc with the others' n' contributors equal and the
  // caller's total mine + extra.
  function rawOf(p, extra) {
    var others = p.mine > 0 ? p.n - 1 : p.n;
    var rest = Math.max(p.total - p.mine, 0);
    var sOthers = others > 0 ? Math.sqrt(others * rest) : 0;
    var me = p.mine + extra;
    var sum = sOthers + Math.sqrt(me);
    return Math.max(sum * sum - rest - me, 0);
  }

  // allocate shares the pool as the server does: in proportion to the raw
  // matches, never above a raw match or the cap.
  function allocate(raws) {
    var capped = raws.map(function () { return false; });
    for (;;) {
      var remaining = pool, rawSum = 0;
      raws.forEach(function (r, i) { if (capped[i]) remaining -= cap; else rawSum += r; });
      if (rawSum <= 0) break;
      var num = Math.min(remaining, rawSum);
      var over = false;
      if (cap > 0) {
        raws.forEach(function (r, i) {
          if (!capped[i] && r * num / rawSum > cap) { capped[i] = true; over = true; }
        });
      }
      if (!over) return raws.map(function (r, i) { return capped[i] ? cap : r * num / rawSum; });
    }
    return raws.map(function (r, i) { return capped[i] ? cap : 0; });
  }

  function estimate(id, extra) {
    var ids = Object.keys(projects).filter(function (k) { return projects[k].eligible; });
    var i = ids.indexOf(id);
    var before = allocate(ids.map(function (k) { return rawOf(projects[k], 0); }))[i] || 0;
    var after = allocate(ids.map(function (k) { return rawOf(projects[k], k === id ? extra : 0); }))[i] || 0;
    return { before: before, after: after };
  }

  // refresh takes the current totals from GET /api/v1/qf/rounds/:id.
  var fetched = 0;
  async function refresh() {
    if (Date.now() - fetched < 3000) return;
    fetched = Date.now();
    try {
      var r = await L.api('GET', '/api/v1/qf/rounds/' + roundID);
      pool = Number(r.pool);
      (r.projects || []).forEach(function (p) {
        var q = projects[p.id];
        if (!q) return;
        q.eligible = p.eligible === true;
        q.n = p.contributors;
        q.total = Number(p.contributed);
        var c = document.getElementById('contributed-' + p.id);
        if (c) c.textContent = L.money(p.contributed);
        var n = document.getElementById('contributors-' + p.id);
        if (n) n.textContent = String(p.contributors);
      });
    } catch (err) { /* keep the page's figures */ }
  }

  function setText(el, parts) {
    el.textContent = '';
    var p = document.createElement('p');
    parts.forEach(function (x) {
      if (typeof x === 'string') { p.appendChild(document.createTextNode(x)); return; }
      var s = document.createElement(x.tag || 'span');
      s.className = x.cls || '';
      if (x.id) s.id = x.id;
      s.textContent = x.text;
      p.appendChild(s);
    });
    el.appendChild(p);
  }

  document.querySelectorAll('form.contribute').forEach(function (form) {
    var id = form.dataset.project;
    var out = document.getElementById('estimate-' + id);
    var input = form.elements.amount;
    var key = L.newKey();
    function show() {
      var v = input.value.trim();
      out.classList.remove('error');
      if (v === '') {
        setText(out, ['Type an amount to see an ', { tag: 'strong', text: 'estimate' }, ' of the match it brings.']);
        return;
      }
      var x = Number(v);
      if (!/^\d+(\.\d{0,6})?$/.test(v) || !(x > 0)) {
        out.classList.add('error');
        setText(out, ['Enter a positive amount, like 5 or 2.50.']);
        return;
      }
      var e = estimate(id, x);
      setText(out, ['Estimated match with your ', L.money(String(x)), ': ',
        { cls: 'figure', id: 'estimate-match-' + id, text: L.money(String(e.after)) },
        ' (now about ' + L.money(String(e.before)) + ', so your contribution adds about ',
        { cls: 'figure', id: 'estimate-added-' + id, text: L.money(String(Math.max(e.after - e.before, 0))) },
        '). This is an estimate.']);
    }
    input.addEventListener('input', show);
    input.addEventListener('focus', function () { refresh().then(show); });
    L.submitForm(form, 'Contributing…', function () {
      var amount = input.value.trim();
      if (!amount) throw new L.ApiError(400, 'invalid', 'Enter an amount to contribute.', 'amount');
      return L.api('POST', '/api/v1/qf/projects/' + id + '/contributions', { amount: amount }, { 'Idempotency-Key': key });
    }, reload);
  });
})();
