// The emergency banner on every page, kept current by polling (a few
// hundred bytes every 20 s, none while the tab is hidden), and the forms of
// the emergency and quorum pages.
(function () {
  'use strict';
  var L = window.Levee;
  var banner = document.getElementById('emergency-banner');

  function money(s) {
    var n = Number(s);
    return isFinite(n) ? n.toFixed(2) : s;
  }

  function left(endsAt) {
    var ms = Date.parse(endsAt) - Date.now();
    if (!(ms > 0)) return 'no time';
    var h = Math.floor(ms / 3600000), m = Math.floor(ms % 3600000 / 60000);
    return (h >= 24 ? Math.floor(h / 24) + 'd ' + (h % 24) + 'h' : h + 'h ' + m + 'm');
  }

  function text(id, s) {
    var el = document.getElementById(id);
    if (el && el.textContent !== s) el.textContent = s;
  }

  var shownActs = '';
  function show(e) {
    if (!banner) return;
    if (!e) { banner.hidden = true; return; }
    banner.hidden = false;
    text('emergency-banner-h', 'Emergency ' + e.id);
    var summary = document.getElementById('emergency-summary');
    if (summary && summary.dataset.id !== e.id) {
      summary.textContent = 'Declared by ';
      var a = document.createElement('a');
      a.href = '/stewards/' + e.steward;
      a.textContent = e.steward_name;
      summary.appendChild(a);
      summary.appendChild(document.createTextNode(': ' + e.reason));
      summary.dataset.id = e.id;
    }
    var scope = (e.districts || []).map(function (d) { return d.name; }).join(', ');
    text('emergency-status', scope + ' · ' + left(e.ends_at) + ' left · cap used ' + money(e.cap_used) + ' of ' + money(e.cap));
    var acts = (e.acts || []).slice(0, 3);
    var key = acts.map(function (a) { return a.id; }).join(',');
    if (key !== shownActs) {
      var ol = document.getElementById('emergency-acts');
      if (ol) {
        ol.textContent = '';
        acts.forEach(function (a) {
          var li = document.createElement('li');
          li.textContent = a.kind + ' ' + money(a.amount) + ': ' + a.reason;
          ol.appendChild(li);
        });
      }
      shownActs = key;
    }
  }

  async function poll() {
    if (document.hidden) return;
    try {
      var res = await L.api('GET', '/api/v1/emergency');
      show(res.emergency);
    } catch (err) { /* offline or busy: try again on the next tick */ }
  }
  if (banner) {
    setInterval(poll, 20000);
    document.addEventListener('visibilitychange', poll);
  }

  function reload() { location.reload(); }
  function val(form, name) { return form.elements[name] ? form.elements[name].value.trim() : ''; }

  var declare = document.getElementById('declare-form');
  if (declare) {
    L.submitForm(declare, 'Declaring…', function () {
      var districts = Array.prototype.filter.call(declare.elements.districts || [], function (c) { return c.checked; })
        .map(function (c) { return c.value; });
      return L.api('POST', '/api/v1/emergencies', { reason: val(declare, 'reason'), districts: districts,
        duration: val(declare, 'duration'), cap: val(declare, 'cap') });
    }, reload);
  }

  var panel = document.getElementById('steward-panel');
  document.querySelectorAll('form.act-form').forEach(function (form) {
    L.submitForm(form, 'Recording…', function () {
      var kind = form.dataset.kind, body = { kind: kind, reason: val(form, 'reason') };
      if (kind === 'reallocate') {
        body.from_line = val(form, 'from_line'); body.to_line = val(form, 'to_line'); body.amount = val(form, 'amount');
      } else if (kind === 'direct_award') {
        var due = new Date(Date.now() + Number(val(form, 'days')) * 86400000).toISOString();
        body.title = val(form, 'title'); body.budget_line = val(form, 'budget_line'); body.contractor = val(form, 'contractor');
        body.price = val(form, 'price'); body.completion_at = due;
        body.milestones = [{ title: 'The work as awarded', share: '1', due_at: due }];
      } else {
        body.proposal = val(form, 'proposal');
      }
      return L.api('POST', '/api/v1/emergencies/' + panel.dataset.emergency + '/acts', body);
    }, reload);
  });

  var petition = document.getElementById('petition-form');
  if (petition) {
    L.submitForm(petition, 'Signing…', function () {
      return L.api('POST', '/api/v1/emergencies/' + petition.dataset.emergency + '/petition', {});
    }, reload);
  }

  var propose = document.getElementById('propose-form');
  if (propose) {
    L.submitForm(propose, 'Proposing…', function () {
      return L.api('POST', '/api/v1/quorum/proposals', { kind: 'reallocation', reason: val(propose, 'reason'),
        payload: { from_line: val(propose, 'from_line'), to_line: val(propose, 'to_line'), amount: val(propose, 'amount') } });
    }, reload);
  }


  // Propose that a neighbour's emergency end: signed by this node, delivered.
  document.querySelectorAll('form.end-request-form').forEach(function (form) {
    L.submitForm(form, 'Signing…', function () {
      return L.api('POST', '/api/v1/quorum/end-requests', { neighbour: form.dataset.neighbour, emergency: form.dataset.emergency, reason: val(form, 'reason') });
    }, reload);
  });

  // A neighbour's request: this node signs the answer and delivers it.
  document.querySelectorAll('form.answer-form').forEach(function (form) {
    L.submitForm(form, 'Signing…', function (button) {
      return L.api('POST', '/api/v1/quorum/incoming/' + form.dataset.request + '/votes', { approve: button.dataset.approve === 'true' });
    }, reload);
  });
})();
