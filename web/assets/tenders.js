// Levee: the tender and contract pages. Sends the forms to the JSON API
// (/api/v1/tenders, /api/v1/bids, /api/v1/contracts) and reloads the page,
// which the server renders with only what the caller may see.
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;

  function reload() { location.reload(); }



  // clickButton wires a lone button to send() → then(result).
  function clickButton(button, label, send, then) {
    button.addEventListener('click', async function () {
      if (button.disabled) return;
      L.clearError();
      L.busy(button, true, label);
      try {
        then(await send());
      } catch (err) {
        L.busy(button, false);
        L.showError(err);
      }
    });
  }

  // isoOf turns a datetime-local input's value into RFC 3339 UTC.
  function isoOf(el, message) {
    var d = el.value ? new Date(el.value) : null;
    if (!d || isNaN(d)) throw new L.ApiError(400, 'invalid', message, el.name);
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // localValue is an ISO time as a datetime-local value in this browser's zone.
  function localValue(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return '';
    var p = function (n) { return String(n).padStart(2, '0'); };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' +
      p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  document.querySelectorAll('input[data-iso]').forEach(function (el) { el.value = localValue(el.dataset.iso); });

  // New tender (treasurers).
  var nt = document.getElementById('new-tender');
  if (nt) {
    L.submitForm(nt, 'Opening…', function () {
      var f = nt.elements;
      var milestones = f.milestones.value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean).map(function (line) {
        var i = line.lastIndexOf(',');
        if (i < 0) throw new L.ApiError(400, 'invalid', 'Write each milestone as “title, share”, like “Foundations, 0.4”.', 'milestones');
        return { title: line.slice(0, i).trim(), share: line.slice(i + 1).trim() };
      });
      var districts = Array.from(nt.querySelectorAll('input[name="districts"]:checked'), function (el) { return el.value; });
      if (!districts.length) throw new L.ApiError(400, 'invalid', 'Choose at least one district.', 'districts');
      var body = {
        budget_line: f.budget_line.value,
        title: f.title.value.trim(),
        scope: f.scope.value.trim(),
        districts: districts,
        budget_cap: f.budget_cap.value.trim(),
        closes_at: isoOf(f.closes_at, 'Choose when bids close.'),
        decision_at: isoOf(f.decision_at, 'Choose the decision date.'),
        twap_window: f.twap_window.value.trim(),
        min_confidence: f.min_confidence.value.trim(),
        acceptance_criteria: f.acceptance_criteria.value.trim(),
        milestones: milestones
      };
      if (f.opens_at.value) body.opens_at = isoOf(f.opens_at, 'Choose when bids open.');
      return L.api('POST', '/api/v1/tenders', body);
    }, function (t) { location.assign('/tenders/' + encodeURIComponent(t.id)); });
  }

  // bidBody reads a bid form (new or revised).
  function bidBody(form) {
    var f = form.elements;
    var dates = Array.from(form.querySelectorAll('input[name="milestone_dates"]'), function (el) {
      return isoOf(el, 'Give a date for every milestone.');
    });
    var body = {
      price: f.price.value.trim(),
      completion_at: isoOf(f.completion_at, 'Choose the promised completion date.'),
      milestone_dates: dates,
      method_statement: f.method_statement.value.trim()
    };
    if (f.organisation) body.organisation = f.organisation.value.trim();
    return body;
  }

  var root = document.getElementById('tender');
  if (root) {
    var tenderID = root.dataset.tender;
    var bf = document.getElementById('bid-form');
    if (bf) {
      L.submitForm(bf, 'Sending…', function () {
        return L.api('POST', '/api/v1/tenders/' + tenderID + '/bids', bidBody(bf));
      }, reload);
    }
    document.querySelectorAll('form.revise-bid').forEach(function (form) {
      L.submitForm(form, 'Saving…', function () {
        return L.api('PUT', '/api/v1/bids/' + form.dataset.bid, bidBody(form));
      }, reload);
    });
    document.querySelectorAll('button.withdraw-bid').forEach(function (button) {
      clickButton(button, 'Withdrawing…', function () {
        if (!confirm('Withdraw this bid? You can send a new one while bidding is open.')) {
          return Promise.reject(new L.ApiError(0, 'cancelled', 'Not withdrawn.'));
        }
        return L.api('DELETE', '/api/v1/bids/' + button.dataset.bid);
      }, reload);
    });
    var close = document.getElementById('close-bids');
    if (close) clickButton(close, 'Closing…', function () { return L.api('POST', '/api/v1/tenders/' + tenderID + '/close-bids'); }, reload);
    var award = document.getElementById('award-tender');
    if (award) clickButton(award, 'Awarding…', function () { return L.api('POST', '/api/v1/tenders/' + tenderID + '/award'); }, reload);
  }

  var contract = document.getElementById('contract');
  if (contract) {
    var base = '/api/v1/contracts/' + contract.dataset.contract + '/milestones/';
    document.querySelectorAll('form.claim-form').forEach(function (form) {
      L.submitForm(form, 'Claiming…', function () {
        return L.api('POST', base + form.dataset.n + '/claim', { evidence: form.elements.evidence.value.trim() });
      }, reload);
    });
    document.querySelectorAll('form.dispute-form').forEach(function (form) {
      L.submitForm(form, 'Disputing…', function () {
        return L.api('POST', base + form.dataset.n + '/dispute', { reason: form.elements.reason.value.trim() });
      }, reload);
    });
  }
})();
