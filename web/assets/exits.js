// The treasurer's payouts on /ledger: record that what was owed to a person
// who left was paid (POST /api/v1/exits/{pseudonym}/payout).
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;
  document.querySelectorAll('form.payout').forEach(function (form) {
    L.submitForm(form, 'Recording…', function () {
      return L.api('POST', '/api/v1/exits/' + form.dataset.pseudonym + '/payout', {reference: form.elements.reference.value});
    }, function (p) {
      var cell = form.parentNode;
      cell.textContent = 'paid ' + p.amount + ' (ledger entry ' + p.ledger_seq + ')';
    });
  });
})();
