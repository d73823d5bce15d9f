// Levee: the admin's page. Each form posts to /api/v1/admin; the ones that
// move money or power (data-confirm) first show what they will do and wait
// for a second click on "Confirm".
(function () {
  'use strict';
  var L = window.Levee;
  var $ = function (id) { return document.getElementById(id); };

  function checked(form, name) {
    return Array.from(form.querySelectorAll('input[name="' + name + '"]:checked'), function (el) { return el.value; });
  }
  function lines(s) {
    return s.split('\n').map(function (x) { return x.trim(); }).filter(Boolean);
  }

  // confirming wires a form's two-step submit: describe() says what will
  // happen (or throws an ApiError for a field), act() does it.
  function confirming(form, describe, act) {
    var box = form.querySelector('.confirm');
    var ask = form.querySelector('.ask');
    function reset() {
      if (!box) return;
      box.hidden = true;
      ask.hidden = false;
    }
    form.querySelectorAll('.confirm-cancel').forEach(function (b) { b.addEventListener('click', reset); });
    form.addEventListener('input', reset);
    form.addEventListener('change', reset);
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      L.clearError(form);
      if (box && box.hidden) {
        try {
          box.querySelector('.confirm-text').textContent = describe();
        } catch (e) {
          L.showError(e, form);
          return;
        }
        box.hidden = false;
        ask.hidden = true;
        box.querySelector('button[type="submit"]').focus();
        return;
      }
      var buttons = form.querySelectorAll('button');
      buttons.forEach(function (b) { b.disabled = true; });
      try {
        await act();
        reset();
      } catch (e) {
        L.showError(e, form);
      } finally {
        buttons.forEach(function (b) { b.disabled = false; });
      }
    });
  }

  function plain(form, act) { confirming(form, null, act); }

  var admit = $('admit-form');
  if (admit) {
    var body = function () {
      var b = {
        name: admit.elements.name.value.trim(),
        kind: checked(admit, 'kind')[0] || 'person',
        roles: checked(admit, 'roles'),
        district: admit.elements.district.value,
        credit: admit.elements.credit.value.trim() || '0'
      };
      if (admit.elements.password.value) b.password = admit.elements.password.value;
      return b;
    };
    confirming(admit, function () {
      var b = body();
      if (!b.name) throw new L.ApiError(400, 'invalid', 'Give a name.', 'name');
      var s = 'Admit ' + b.name + ' (' + b.kind + ') as ' + (b.roles.join(', ') || 'no role') +
        (b.district ? ' in ' + b.district : '');
      if (Number(b.credit) > 0) s += ', with ' + L.money(b.credit) + ' of new money from the treasury\u2019s issuance account';
      return s + '?';
    }, async function () {
      var b = body();
      var a = await L.api('POST', '/api/v1/admin/accounts', b);
      $('first-name').textContent = a.name;
      $('first-login').textContent = a.name;
      $('first-password').textContent = b.password ? b.password : '(none: they sign in with the token)';
      $('first-token').textContent = a.token;
      $('first-signin').hidden = false;
      var row = document.createElement('tr');
      row.id = 'account-' + a.id;
      [a.name + ' ' + a.kind, (a.roles || []).join(', '), a.district || '\u2013', L.money(a.cash), 'active'].forEach(function (v) {
        var td = document.createElement('td');
        td.textContent = v;
        row.appendChild(td);
      });
      document.querySelector('#account-table tbody').appendChild(row);
      admit.reset();
    });
  }

  var change = $('change-form');
  if (change) {
    var pick = change.elements.account;
    pick.addEventListener('change', function () {
      var o = pick.selectedOptions[0];
      var roles = (o.dataset.roles || '').split(',');
      change.querySelectorAll('input[name="roles"]').forEach(function (el) { el.checked = roles.indexOf(el.value) >= 0; });
      change.elements.district.value = o.dataset.district || '';
      change.elements.disabled.checked = o.dataset.disabled === 'true';
    });
    confirming(change, function () {
      var o = pick.selectedOptions[0];
      if (!pick.value) throw new L.ApiError(400, 'invalid', 'Choose an account.', 'account');
      var parts = [];
      var roles = checked(change, 'roles').join(', ');
      if (roles !== (o.dataset.roles || '').split(',').join(', ')) parts.push('roles ' + (o.dataset.roles || 'none') + ' \u2192 ' + (roles || 'none'));
      var d = change.elements.district.value;
      if (d !== (o.dataset.district || '')) parts.push('district ' + (o.dataset.district || 'none') + ' \u2192 ' + (d || 'none'));
      var dis = change.elements.disabled.checked;
      if (dis !== (o.dataset.disabled === 'true')) parts.push(dis ? 'disable the account (its sign-ins stop working)' : 're-enable the account');
      if (!parts.length) throw new L.ApiError(400, 'invalid', 'Nothing changes.', 'account');
      return 'Change ' + o.dataset.name + ': ' + parts.join('; ') + '?';
    }, async function () {
      await L.api('PATCH', '/api/v1/admin/accounts/' + pick.value, {
        roles: checked(change, 'roles'), district: change.elements.district.value, disabled: change.elements.disabled.checked
      });
      location.reload();
    });
  }

  var reset = $('reset-form');
  if (reset) {
    var who = reset.elements.account;
    confirming(reset, function () {
      if (!who.value) throw new L.ApiError(400, 'invalid', 'Choose a person.', 'account');
      return 'Reset the password of ' + who.selectedOptions[0].dataset.name +
        '? Their old password stops working at once and they are signed out everywhere.';
    }, async function () {
      var r = await L.api('POST', '/api/v1/admin/accounts/' + who.value + '/password-reset');
      var until = new Date(r.expires_at).toLocaleString();
      $('reset-said').textContent = r.mailed
        ? 'The link went to ' + r.name + '\u2019s confirmed address. It works once, until ' + until + '.'
        : r.name + ' has no confirmed address here: give them this link yourself. It is shown only now, and works once, until ' + until + '.';
      $('reset-link').textContent = r.link || '';
      $('reset-link').hidden = !r.link;
      $('reset-result').hidden = false;
      reset.reset();
    });
  }

  var member = $('member-form');
  if (member) {
    plain(member, async function () {
      await L.api('POST', '/api/v1/admin/organisations/' + member.elements.organisation.value + '/members',
        { account: member.elements.account.value });
      location.reload();
    });
  }

  var district = $('district-form');
  if (district) {
    plain(district, async function () {
      await L.api('POST', '/api/v1/admin/districts', { name: district.elements.name.value.trim() });
      location.reload();
    });
  }

  var issue = $('issue-form');
  if (issue) {
    confirming(issue, function () {
      var a = issue.elements.amount.value.trim();
      if (!a) throw new L.ApiError(400, 'invalid', 'Give an amount.', 'amount');
      return 'Create ' + L.money(a) + ' of new money in the treasury? It is recorded in the ledger for everyone to see.';
    }, async function () {
      var e = await L.api('POST', '/api/v1/admin/treasury/issue', { amount: issue.elements.amount.value.trim(), memo: issue.elements.memo.value });
      $('issue-result').textContent = 'Issued ' + L.money(issue.elements.amount.value.trim()) + ': ledger entry ' + e.seq + '.';
      issue.reset();
    });
  }

  var charter = $('charter-form');
  if (charter) {
    var charterBody = function () {
      var b = { districts: checked(charter, 'districts') };
      var stewards = charter.elements.stewards.value.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
      if (stewards.length) b.stewards = stewards;
      // "Samar = http://samar.example.org <public key>": a neighbour node
      // (without the key, founding answers with its fingerprint to confirm).
      var ns = lines(charter.elements.neighbours.value).map(function (l) {
        var i = l.indexOf('=');
        var parts = (i < 0 ? '' : l.slice(i + 1).trim()).split(/\s+/);
        var n = { name: (i < 0 ? l : l.slice(0, i)).trim(), url: parts[0] || '' };
        if (parts[1]) n.public_key = parts[1];
        return n;
      });
      if (ns.length) b.neighbours = ns;
      var q = charter.elements.quorum.value.trim();
      if (q) b.quorum = Number(q);
      var cap = charter.elements.spending_cap.value.trim();
      if (cap) b.spending_cap = cap;
      var p = charter.elements.petition_threshold.value.trim();
      if (p) b.petition_threshold = Number(p);
      return b;
    };
    confirming(charter, function () {
      var b = charterBody();
      return 'Found the charter: ' + b.districts.length + ' districts, stewards ' + ((b.stewards || []).join(', ') || 'any steward') +
        ', ' + (b.neighbours || []).length + ' neighbours, quorum ' + (b.quorum || '\u2013') +
        '? Once founded, only the neighbours\u2019 quorum can change it.';
    }, async function () {
      await L.api('PUT', '/api/v1/admin/charter', charterBody());
      location.reload();
    });
  }
})();
