// Levee: the email form on the portfolio page. Saving an address sends a
// confirmation link; the checkboxes choose what is mailed; "stop" forgets
// the address.
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;
  var $ = function (id) { return document.getElementById(id); };
  function reload() { location.reload(); }

  var address = $('email-address');
  if (address) {
    L.submitForm(address, 'Sending…', function () {
      return L.api('PUT', '/api/v1/me/email', { address: address.elements.address.value.trim() });
    }, function (r) {
      $('email-result').textContent = 'Saved. A confirmation link was sent to ' + r.address + '.';
      setTimeout(reload, 1500);
    });
  }
  var cats = $('email-categories');
  if (cats) {
    L.submitForm(cats, 'Saving…', function () {
      var chosen = [];
      cats.querySelectorAll('input[name="categories"]:checked').forEach(function (el) { chosen.push(el.value); });
      return L.api('PUT', '/api/v1/me/email/categories', { categories: chosen });
    }, function () {
      L.busy($('email-categories-save'), false);
      $('email-result').textContent = 'Saved your choices.';
    });
    $('email-stop').addEventListener('click', async function () {
      try {
        await L.api('DELETE', '/api/v1/me/email');
        reload();
      } catch (err) {
        L.showError(err, cats);
      }
    });
  }
})();
