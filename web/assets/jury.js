// Levee: the jury pages. The opt-out on /jury; on a case page the evidence
// and appeal forms and, for a seated juror, the ballot. The ballot seals a
// vote in the browser: a random salt, SHA-256(verdict ":" salt) sent as the
// commitment, and the salt kept in localStorage (and shown, to copy) until
// the juror reveals. Losing the salt loses the vote, so the page warns until
// the juror says it is saved.
(function () {
  'use strict';
  var L = window.Levee;
  if (!L) return;
  var $ = function (id) { return document.getElementById(id); };

  // noted wraps a form's send so that an API error is also written next to
  // the field it names (Levee.submitForm shows the banner and marks the
  // field); the note is the form's #<form id>-error element.
  function noted(form, send) {
    var note = $(form.id + '-error');
    return async function (button) {
      if (note) note.hidden = true;
      try {
        return await send(button);
      } catch (err) {
        if (note) {
          var el = err.field && form.elements[err.field];
          if (el && el.length && !el.tagName) el = el[0]; // a radio group
          var at = el && el.closest && el.closest('.field, fieldset');
          if (at) at.after(note);
          note.textContent = err.message;
          note.hidden = false;
        }
        throw err;
      }
    };
  }

  function invalid(message, field) { return new L.ApiError(400, 'invalid', message, field); }
  function reload() { location.reload(); }

  // Jury duty: the opt-out.
  var duty = $('jury-duty');
  if (duty) {
    L.submitForm(duty, 'Saving…', function () {
      return L.api('PUT', '/api/v1/me/jury-duty', { opt_out: duty.elements.opt_out.checked });
    }, function (r) {
      L.busy($('save-duty'), false);
      $('duty-result').textContent = r.opt_out ? 'Saved: you are left out of future juries.' : 'Saved: you may be drawn for juries.';
    });
  }

  var root = $('case');
  if (!root) return;
  var api = '/api/v1/cases/' + encodeURIComponent(root.dataset.case);

  // upload sends multipart evidence; Levee.api speaks JSON only.
  async function upload(path, data) {
    var res;
    try {
      res = await fetch(path, { method: 'POST', body: data, credentials: 'same-origin', cache: 'no-store',
        headers: { Accept: 'application/json', 'X-CSRF-Token': L.csrf } });
    } catch (e) {
      throw new L.ApiError(0, 'unavailable', 'Cannot reach Levee. Check your connection and try again.');
    }
    var body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      var e = (body && body.error) || {};
      throw new L.ApiError(res.status, e.code, e.message || 'The server answered ' + res.status + '.', e.field);
    }
    return body;
  }

  var ev = $('evidence-form');
  if (ev) {
    L.submitForm(ev, 'Sending…', noted(ev, function () {
      var text = ev.elements.body.value.trim();
      if (!text) throw invalid('Write what the evidence shows.', 'body');
      var file = ev.elements.file.files[0];
      if (!file) return L.api('POST', api + '/evidence', { body: text });
      var data = new FormData();
      data.append('body', text);
      data.append('file', file, file.name);
      return upload(api + '/evidence', data);
    }), reload);
  }

  var appeal = $('appeal-form');
  if (appeal) {
    L.submitForm(appeal, 'Appealing…', noted(appeal, function () {
      return L.api('POST', api + '/appeal', { reason: appeal.elements.reason.value.trim() });
    }), reload);
  }

  // ---- the ballot ----------------------------------------------------
  var ballot = $('ballot');
  if (!ballot) return;
  // One record per case and round: {verdict, salt, committed, saved,
  // older}. older keeps earlier sealed votes of the round whose answer may
  // have been lost, so a reveal can still find the one the server holds.
  var key = 'levee:ballot:' + ballot.dataset.case + ':' + ballot.dataset.round;
  var note = $('ballot-note');
  var unsaved = false;

  function load() {
    try { return JSON.parse(localStorage.getItem(key)); } catch (e) { return null; }
  }
  // store reports whether the browser kept rec (private modes may refuse).
  function store(rec) {
    try {
      if (rec) localStorage.setItem(key, JSON.stringify(rec)); else localStorage.removeItem(key);
      return true;
    } catch (e) {
      return false;
    }
  }
  function hex(bytes) {
    return Array.from(bytes, function (x) { return x.toString(16).padStart(2, '0'); }).join('');
  }
  function newSalt() {
    var b = new Uint8Array(32);
    crypto.getRandomValues(b);
    return hex(b);
  }
  async function commitmentOf(verdict, salt) {
    if (!window.crypto || !crypto.subtle) {
      throw new L.ApiError(0, 'unavailable', 'This browser cannot seal a vote on this connection: open Levee over https.');
    }
    var sum = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verdict + ':' + salt));
    return hex(new Uint8Array(sum));
  }
  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  window.addEventListener('beforeunload', function (e) {
    if (!unsaved) return;
    e.preventDefault();
    e.returnValue = ''; // older browsers need it set to ask
  });

  // showSalt puts the salt on screen; until the juror confirms it is saved
  // the warning shows and leaving the page asks first.
  function showSalt(rec, kept) {
    $('salt-panel').hidden = false;
    $('salt-value').value = rec.salt;
    unsaved = !rec.saved;
    $('salt-warning').hidden = rec.saved;
    $('salt-saved').hidden = rec.saved;
    $('salt-status').textContent = rec.saved ? 'You saved your salt. This browser keeps a copy until you reveal.' :
      kept ? '' : 'This browser could not keep the salt (private browsing?): copy it now.';
  }

  var commit = $('commit-form');
  if (commit) {
    var rec = load();
    if (ballot.dataset.committed) {
      if (rec && rec.committed) {
        showSalt(rec, true);
        commit.elements.verdict.value = rec.verdict;
      } else {
        say('This browser does not hold the salt of your sealed vote. Keep the salt you saved, or seal your vote again here.');
      }
    }
    L.submitForm(commit, 'Sealing…', noted(commit, async function () {
      var verdict = commit.elements.verdict.value;
      if (!verdict) throw invalid('Choose a verdict.', 'verdict');
      var salt = newSalt();
      var commitment = await commitmentOf(verdict, salt);
      var prev = load();
      var older = prev ? (prev.older || []).slice(0, 3) : [];
      if (prev && prev.committed) older.unshift({ verdict: prev.verdict, salt: prev.salt });
      var next = { verdict: verdict, salt: salt, committed: false, saved: false, older: older };
      // Kept before it is sent: if the answer is lost, the salt is not.
      var kept = store(next);
      try {
        await L.api('POST', api + '/commit', { commitment: commitment });
      } catch (err) {
        // A refusal changed nothing on the server; an answer that never
        // came may have, so that salt is kept (as committed) as well.
        if (err.status >= 400 && err.status < 500) store(prev);
        else store(Object.assign(next, { committed: true }));
        throw err;
      }
      next.committed = true;
      kept = store(next) && kept;
      return { rec: next, kept: kept };
    }), function (r) {
      L.busy($('commit-vote'), false);
      $('commit-vote').textContent = 'Change my sealed vote';
      ballot.dataset.committed = '1';
      say('Your vote is sealed. Nobody can read it until you reveal it.');
      showSalt(r.rec, r.kept);
      $('salt-value').focus();
      $('salt-value').select();
    });

    $('copy-salt').addEventListener('click', async function () {
      var input = $('salt-value');
      input.select();
      var ok = false;
      try {
        if (navigator.clipboard) { await navigator.clipboard.writeText(input.value); ok = true; }
      } catch (e) { ok = false; }
      if (!ok) { try { ok = document.execCommand('copy'); } catch (e) { ok = false; } }
      $('salt-status').textContent = ok ? 'Copied. Paste it somewhere safe, then confirm below.' : 'Select the salt and copy it yourself, then confirm below.';
    });
    $('salt-saved').addEventListener('click', function () {
      var r = load() || {};
      r.saved = true;
      store(r);
      showSalt(Object.assign(r, { salt: $('salt-value').value }), true);
    });
  }

  var reveal = $('reveal-form');
  if (reveal) {
    var kept = load();
    if (kept && kept.salt) {
      reveal.elements.verdict.value = kept.verdict;
      reveal.elements.salt.value = kept.salt;
      $('reveal-hint').textContent = 'Filled in from this browser, which kept them when you sealed your vote.';
    }
    var send = function (verdict, salt) { return L.api('POST', api + '/reveal', { verdict: verdict, salt: salt }); };
    L.submitForm(reveal, 'Revealing…', noted(reveal, async function () {
      var verdict = reveal.elements.verdict.value;
      var salt = reveal.elements.salt.value.trim();
      if (!verdict) throw invalid('Choose the verdict you sealed.', 'verdict');
      if (!salt) throw invalid('Paste the salt you saved when you sealed your vote.', 'salt');
      try {
        return await send(verdict, salt);
      } catch (err) {
        // The server may hold an earlier sealed vote whose change never got
        // an answer; try those this browser kept, if the juror changed
        // nothing in the form.
        var untouched = kept && kept.verdict === verdict && kept.salt === salt;
        if (err.field !== 'salt' || !untouched) throw err;
        for (var i = 0; i < (kept.older || []).length; i++) {
          try {
            return await send(kept.older[i].verdict, kept.older[i].salt);
          } catch (e) {
            if (e.field !== 'salt') throw e;
          }
        }
        throw err;
      }
    }), function () {
      store(null); // revealed: the server has verdict and salt now
      reload();
    });
  }
})();
