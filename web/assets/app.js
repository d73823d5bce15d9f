// Levee: the script every page loads. It talks to the JSON API, shows its
// errors in the banner, and drives the sign-in and new-market forms. No
// framework: the pages work (read-only) without it.
(function () {
  'use strict';

  var meta = document.querySelector('meta[name="csrf-token"]');
  var Levee = (window.Levee = { csrf: meta ? meta.content : '' });

  // ApiError carries the API's {"error":{"code","message","field"}}.
  function ApiError(status, code, message, field) {
    this.status = status;
    this.code = code || 'internal';
    this.message = message || 'Something went wrong.';
    this.field = field || '';
  }
  ApiError.prototype = Object.create(Error.prototype);
  Levee.ApiError = ApiError;

  // api sends one request and resolves with the decoded JSON (null for an
  // empty answer) or rejects with an ApiError.
  Levee.api = async function (method, path, body, headers) {
    var h = { Accept: 'application/json' };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (method !== 'GET' && Levee.csrf) h['X-CSRF-Token'] = Levee.csrf;
    Object.assign(h, headers || {});
    var res;
    try {
      res = await fetch(path, {
        method: method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store'
      });
    } catch (e) {
      throw new ApiError(0, 'unavailable', 'Cannot reach Levee. Check your connection and try again.');
    }
    var data = null;
    if ((res.headers.get('Content-Type') || '').indexOf('application/json') === 0) {
      try { data = await res.json(); } catch (e) { data = null; }
    }
    if (!res.ok) {
      var e = (data && data.error) || {};
      throw new ApiError(res.status, e.code, e.message || 'The server answered ' + res.status + '.', e.field);
    }
    return data;
  };

  var banner = document.getElementById('error-banner');

  // showError puts err in the banner and, when it names a field of form,
  // marks that field and moves focus to it.
  Levee.showError = function (err, form) {
    Levee.clearError(form);
    if (!banner) return;
    document.getElementById('error-message').textContent = err.message;
    document.getElementById('error-field').textContent = err.field ? '(field: ' + err.field + ')' : '';
    banner.hidden = false;
    var el = form && err.field && form.elements[err.field];
    if (el && el.length && !el.tagName) el = el[0]; // a radio group
    if (el && el.setAttribute) {
      el.setAttribute('aria-invalid', 'true');
      el.focus();
    }
  };

  Levee.clearError = function (form) {
    if (banner) banner.hidden = true;
    if (form) {
      form.querySelectorAll('[aria-invalid]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
    }
  };

  var close = document.getElementById('error-close');
  if (close) close.addEventListener('click', function () { Levee.clearError(); });

  // fixed formats a decimal string with the given places, rounding half away
  // from zero on its micro-units (as the server's pages do).
  Levee.fixed = function (s, places) {
    var micros = Math.round(Number(s) * 1e6);
    if (!isFinite(micros)) return String(s);
    var neg = micros < 0;
    var unit = Math.pow(10, 6 - places);
    var u = Math.floor((Math.abs(micros) + unit / 2) / unit);
    var scale = Math.pow(10, places);
    var out = String(Math.floor(u / scale));
    if (places > 0) out += '.' + String(u % scale).padStart(places, '0');
    return neg && u !== 0 ? '\u2212' + out : out;
  };
  Levee.price = function (s) { return Levee.fixed(s, 3); };
  Levee.money = function (s) { return Levee.fixed(s, 2); };
  Levee.signed = function (s) {
    var out = Levee.fixed(s, 2);
    return Number(s) > 0 && out !== '0.00' ? '+' + out : out;
  };
  var months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  // short is "Nov 22 01:49" in UTC, as the pages' tables show times.
  Levee.short = function (iso) {
    var d = new Date(iso);
    if (isNaN(d)) return '';
    return months[d.getUTCMonth()] + ' ' + d.getUTCDate() + ' ' + d.toISOString().slice(11, 16);
  };
  Levee.when = function (iso) {
    var d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  };

  // newKey makes an idempotency key (crypto.getRandomValues works on plain
  // http too, unlike randomUUID).
  Levee.newKey = function () {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, function (x) { return x.toString(16).padStart(2, '0'); }).join('');
  };

  // busy disables a submit button while its request is in flight.
  function busy(button, on, label) {
    if (!button) return;
    if (on) {
      button.dataset.label = button.textContent;
      button.textContent = label;
    } else if (button.dataset.label) {
      button.textContent = button.dataset.label;
    }
    button.disabled = on;
  }
  Levee.busy = busy;

  // submitForm wires form to send(button) → then(result), with the busy
  // button and the error banner; pages with forms share it.
  Levee.submitForm = function (form, label, send, then) {
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var button = ev.submitter || form.querySelector('button[type="submit"]');
      if (!button || button.disabled) return;
      Levee.clearError(form);
      Levee.busy(button, true, label);
      try {
        var res = await send(button);
        then(res);
      } catch (err) {
        Levee.busy(button, false);
        Levee.showError(err, form);
      }
    });
  };

  // Sign in: POST /api/v1/session sets the session cookie; then go on.
  document.querySelectorAll('form[data-signin]').forEach(function (form) {
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      if (button.disabled) return;
      var body = form.dataset.signin === 'token'
        ? { token: form.elements.token.value.trim() }
        : { name: form.elements.name.value.trim(), password: form.elements.password.value };
      if (form.dataset.signin === 'token' && !body.token) {
        return Levee.showError(new ApiError(400, 'invalid', 'Paste your API token.', 'token'), form);
      }
      busy(button, true, 'Signing in…');
      try {
        await Levee.api('POST', '/api/v1/session', body);
        location.assign(form.dataset.next || '/markets');
      } catch (err) {
        busy(button, false);
        Levee.showError(err, form);
      }
    });
  });

  // Sign out: the CSRF token travels only in the X-CSRF-Token header, so
  // the header's form is sent from here rather than as a plain form post.
  document.querySelectorAll('form[data-signout]').forEach(function (form) {
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      try {
        await Levee.api('DELETE', '/api/v1/session');
        location.assign('/markets');
      } catch (err) {
        Levee.showError(err);
      }
    });
  });

  // New market (treasurers): POST /api/v1/markets, then open the market.
  var nm = document.getElementById('new-market');
  if (nm) {
    nm.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var button = nm.querySelector('button[type="submit"]');
      if (button.disabled) return;
      var closes = nm.elements.closes_at.value;
      var when = closes ? new Date(closes) : null;
      if (!when || isNaN(when)) {
        return Levee.showError(new ApiError(400, 'invalid', 'Choose when trading closes.', 'closes_at'), nm);
      }
      var body = {
        question: nm.elements.question.value.trim(),
        outcomes: nm.elements.outcomes.value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean),
        liquidity: nm.elements.liquidity.value.trim(),
        closes_at: when.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        district: nm.elements.district.value
      };
      busy(button, true, 'Opening…');
      try {
        var m = await Levee.api('POST', '/api/v1/markets', body);
        location.assign('/markets/' + encodeURIComponent(m.id));
      } catch (err) {
        busy(button, false);
        Levee.showError(err, nm);
      }
    });
  }
})();
