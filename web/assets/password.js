// Levee: the password forms. On the portfolio, changing one's own password
// and signing out everywhere; on /password/reset, choosing a new password
// through an admin's one-time link.
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;
  var $ = function (id) { return document.getElementById(id); };

  function same(form, a, b) {
    if (form.elements[a].value !== form.elements[b].value) {
      throw new L.ApiError(400, 'invalid', 'The two new passwords differ.', b);
    }
  }

  var change = $('password-form');
  if (change) {
    L.submitForm(change, 'Saving…', async function () {
      same(change, 'new', 'again');
      return L.api('PUT', '/api/v1/me/password', { current: change.elements.current.value, new: change.elements.new.value });
    }, function () {
      L.busy($('password-save'), false);
      change.reset();
      $('password-result').textContent = 'Your password is changed. Every other session of yours was signed out.';
    });
  }

  var everywhere = $('signout-everywhere');
  if (everywhere) {
    L.submitForm(everywhere, 'Signing out…', function () {
      return L.api('POST', '/api/v1/me/sign-out-everywhere', { tokens: everywhere.elements.tokens.checked });
    }, function () {
      location.assign('/signin');
    });
  }

  var reset = $('reset-form');
  if (reset) {
    L.submitForm(reset, 'Saving…', async function () {
      same(reset, 'password', 'again');
      return L.api('POST', '/api/v1/password/reset', { token: reset.dataset.token, password: reset.elements.password.value });
    }, function (r) {
      reset.hidden = true;
      var p = $('reset-result');
      p.textContent = 'Your new password is set, ' + r.name + '. ';
      var a = document.createElement('a');
      a.href = '/signin';
      a.textContent = 'Sign in';
      p.appendChild(a);
    });
  }
})();
