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
