// The data export page: votes sealed but not revealed have their salt only
// in this browser (jury.js keeps it in localStorage); show them here, and
// put them into the JSON download, so the export is complete.
(function () {
  'use strict';
  function kept(caseID, round) {
    try { return JSON.parse(localStorage.getItem('levee:ballot:' + caseID + ':' + round)); } catch (e) { return null; }
  }
  var rows = document.querySelectorAll('#export-ballots tbody tr');
  var salts = [];
  rows.forEach(function (tr) {
    var rec = kept(tr.dataset.case, tr.dataset.round);
    if (!rec || !rec.salt) return;
    salts.push({case: tr.dataset.case, round: Number(tr.dataset.round), verdict: rec.verdict, salt: rec.salt});
    var cell = tr.querySelector('.salt');
    if (cell && !cell.querySelector('code')) {
      var code = document.createElement('code');
      code.textContent = rec.salt + ' (' + rec.verdict + ', kept by this browser)';
      cell.replaceChildren(code);
    }
  });
  var link = document.getElementById('export-download');
  if (!link || salts.length === 0) return;
  link.addEventListener('click', function (ev) {
    ev.preventDefault();
    fetch('/api/v1/me/export', {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (doc) {
      doc.browser_salts = salts;
      var blob = new Blob([JSON.stringify(doc, null, 2)], {type: 'application/json'});
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'levee-export.json';
      document.body.appendChild(a);
      a.click();
      a.remove();
    });
  });
})();

// Leaving: preview first (POST /api/v1/me/exit with preview), then confirm.
(function () {
  'use strict';
  var L = window.Levee;
  var form = document.getElementById('exit-form');
  if (!form || !L) return;
  var plan = document.getElementById('exit-plan');
  var lines = document.getElementById('exit-plan-lines');
  var done = document.getElementById('exit-done');
  function positions() { return form.elements.positions.value; }
  function line(text) {
    var li = document.createElement('li');
    li.textContent = text;
    lines.appendChild(li);
  }
  L.submitForm(form, 'Previewing…', function () {
    return L.api('POST', '/api/v1/me/exit', {positions: positions(), preview: true});
  }, function (p) {
    L.busy(document.getElementById('exit-preview'), false);
    lines.replaceChildren();
    p.sales.forEach(function (s) { line('Sell ' + L.money(s.shares) + ' "' + s.outcome_name + '" in ' + s.question + ' for ' + L.money(s.proceeds)); });
    p.kept.forEach(function (k) { line('Keep ' + L.money(k.shares) + ' "' + k.outcome_name + '" in ' + k.question + ': ' + k.why); });
    line('Move ' + L.money(p.moved) + ' to ' + p.exit_account + ', which the treasury owes you');
    p.jury_seats.forEach(function (c) { line('Serve your seat on case ' + c.id + ' (' + c.question + ')'); });
    p.notes.forEach(line);
    plan.hidden = false;
  });
  document.getElementById('exit-cancel').addEventListener('click', function () { plan.hidden = true; });
  document.getElementById('exit-confirm').addEventListener('click', async function (ev) {
    var button = ev.currentTarget;
    L.busy(button, true, 'Leaving…');
    try {
      var p = await L.api('POST', '/api/v1/me/exit', {positions: positions()});
      plan.hidden = true;
      form.hidden = true;
      done.textContent = 'You have left the city. ' + L.money(p.moved) + ' moved to ' + p.exit_account +
        '; a treasurer pays it out. Keep this page: your records stay here.';
      done.hidden = false;
    } catch (err) {
      L.busy(button, false);
      L.showError(err, form);
    }
  });
})();
