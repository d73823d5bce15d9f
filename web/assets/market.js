// Levee: the market page. Live prices (websocket, or polling when the socket
// is unavailable), the price chart (uPlot when embedded; the table otherwise),
// the order ticket with its debounced exact preview, recent trades and the
// caller's position.
(function () {
  'use strict';

  var L = window.Levee;
  var root = document.getElementById('market');
  if (!L || !root) return;

  var id = root.dataset.marketId;
  var base = '/api/v1/markets/' + encodeURIComponent(id);
  var signedIn = !!root.dataset.signedIn;
  var items = Array.prototype.slice.call(root.querySelectorAll('.outcome[data-outcome]'));
  var names = items.map(function (li) { return li.dataset.name; });
  var state = {
    seq: Number(root.dataset.seq) || 0,
    status: root.dataset.status,
    prices: items.map(function (li) { return li.querySelector('meter').getAttribute('value'); })
  };
  var $ = function (sel) { return document.getElementById(sel); };
  var announcer = $('price-announcer');

  var timers = {};
  function later(key, fn, ms) {
    clearTimeout(timers[key]);
    timers[key] = setTimeout(fn, ms);
  }

  function trim(s) {
    s = String(s);
    return s.indexOf('.') >= 0 ? s.replace(/\.?0+$/, '') : s;
  }

  function cell(text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) { tr.appendChild(c); });
    return tr;
  }

  function emptyRow(text, span) {
    var td = cell(text);
    td.colSpan = span;
    return row([td]);
  }

  // ---- prices and status ------------------------------------------------

  function setPrices(prices) {
    if (!Array.isArray(prices) || prices.length !== items.length) return;
    var changed = false;
    var lead = 0;
    prices.forEach(function (p, i) {
      if (Number(p) > Number(prices[lead])) lead = i;
      if (p === state.prices[i]) return;
      changed = true;
      items[i].querySelector('.price').textContent = L.price(p);
      items[i].querySelector('meter').value = Number(p);
    });
    items.forEach(function (li, i) { li.classList.toggle('leading', i === lead); });
    state.prices = prices.slice();
    if (changed) {
      chart.add(Date.now() / 1000, prices);
      addHistoryRow(prices);
      // One polite summary per burst of trades, not one per tick.
      later('announce', function () {
        announcer.textContent = 'Prices now: ' + names.map(function (n, i) {
          return n + ' ' + L.price(state.prices[i]);
        }).join(', ') + '.';
      }, 1500);
    }
  }

  // addHistoryRow puts the new prices on top of the history table (the
  // chart's text equivalent, and the whole history when there is no chart).
  function addHistoryRow(prices) {
    var body = document.querySelector('#history-table tbody');
    if (!body) return;
    var placeholder = body.querySelector('td[colspan]');
    if (placeholder) placeholder.parentNode.remove();
    body.prepend(row([cell(L.short(new Date().toISOString()))].concat(prices.map(function (p) { return cell(L.price(p), 'num'); }))));
    while (body.rows.length > 12) body.deleteRow(-1);
  }

  function resolutionText(status, winner) {
    switch (status) {
      case 'closed': return 'Trading has closed; the outcome is not final yet.';
      case 'resolved': return 'Resolved: ' + (winner || 'see the prices') + '. Each winning share paid 1.00.';
      case 'void': return 'Voided: unwound as if it never happened; every trader got back what they put in.';
    }
    return null;
  }

  function setStatus(status, resolved) {
    if (!status || status === state.status) return;
    state.status = status;
    var badge = $('status-badge');
    badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
    badge.className = 'status status-' + status;
    var winner = typeof resolved === 'number' ? names[resolved] : '';
    var text = resolutionText(status, winner);
    if (text) $('resolution').textContent = text;
    if (status === 'resolved' && !winner) poll();
    if (status !== 'open' && ticket) {
      ticket.querySelectorAll('input, select, button').forEach(function (el) { el.disabled = true; });
      showPreviewText('This market takes no more orders.');
    }
    announcer.textContent = 'The market is now ' + status + '.';
  }

  // apply takes anything shaped like a market (GET /markets/{id}, a
  // websocket message, an order's answer) and updates the page, ignoring
  // news older than what it shows.
  function apply(m) {
    if (!m) return;
    var seq = typeof m.seq === 'number' ? m.seq : null;
    if (seq !== null && seq < state.seq) return;
    if (m.prices) setPrices(m.prices);
    if (m.status) setStatus(m.status, m.resolved_outcome);
    if (m.volume) $('volume').textContent = L.money(m.volume);
    if (seq !== null && seq > state.seq) {
      state.seq = seq;
      later('trades', refreshTrades, 250);
      later('market', poll, 300); // volume and anything else the event lacks
      later('position', refreshPosition, 400);
      if (ticket) later('quote', requote, 250);
    }
  }

  async function refreshTrades() {
    var r;
    try { r = await L.api('GET', base + '/trades?limit=10'); } catch (e) { return; }
    var rows = (r.trades || []).map(function (t) {
      return row([cell(L.short(t.at)), cell(t.side + ' ' + (names[t.outcome] || '?')),
        cell(L.money(t.shares), 'num'), cell(L.money(t.amount), 'num')]);
    });
    $('trades-body').replaceChildren.apply($('trades-body'), rows.length ? rows : [emptyRow('No trades yet.', 4)]);
  }

  async function refreshPosition() {
    var body = $('position-body');
    if (!signedIn || !body) return;
    var pos, me;
    try {
      var both = await Promise.all([L.api('GET', '/api/v1/me/positions'), L.api('GET', '/api/v1/me')]);
      pos = both[0];
      me = both[1];
    } catch (e) { return; }
    var mine = (pos.positions || []).filter(function (p) { return String(p.market_id) === id; });
    var rows = mine.map(function (p) {
      var pnl = Number(p.pnl);
      return row([cell(p.outcome_name), cell(L.money(p.shares), 'num'), cell(L.money(p.cost_basis), 'num'),
        cell(L.money(p.value), 'num'), cell(L.signed(p.pnl), 'num pnl' + (pnl > 0 ? ' up' : pnl < 0 ? ' down' : ''))]);
    });
    body.replaceChildren.apply(body, rows.length ? rows : [emptyRow('No position in this market yet.', 5)]);
    $('cash').textContent = L.money(me.cash);
  }

  // ---- live updates ------------------------------------------------------

  var liveMode = $('live-mode');
  var live = false;
  var pollTimer = null;
  var pollEvery = 0;
  var backoff = 2000;

  async function poll() {
    if (document.hidden) return;
    try { apply(await L.api('GET', base)); } catch (e) { /* keep what we show; the next tick retries */ }
  }

  // setPolling polls every ms (0: not at all). While the socket is live a
  // slow poll stays on as a safety net.
  function setPolling(ms) {
    if (pollEvery === ms) return;
    clearInterval(pollTimer);
    pollEvery = ms;
    pollTimer = ms ? setInterval(poll, ms) : null;
  }

  function showMode() {
    liveMode.textContent = live ? 'Live: prices update as trades happen.' : 'Prices refresh every 3 seconds.';
  }

  function connect() {
    if (!('WebSocket' in window)) return;
    var ws;
    try {
      ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
    } catch (e) { return; }
    ws.onopen = function () { ws.send(JSON.stringify({ op: 'subscribe', markets: [id] })); };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || (msg.market !== undefined && String(msg.market) !== id)) return;
      switch (msg.type) {
        case 'snapshot':
          live = true;
          backoff = 2000;
          setPolling(30000);
          showMode();
          apply(msg);
          break;
        case 'quote':
        case 'trade':
        case 'status':
          apply(msg);
          break;
        case 'gap':
          poll();
          break;
        case 'error':
          ws.close(); // the subscription failed: polling takes over
          break;
      }
    };
    ws.onclose = function () {
      live = false;
      setPolling(3000);
      showMode();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 60000);
    };
  }

  document.addEventListener('visibilitychange', function () { if (!document.hidden) poll(); });

  // ---- chart -------------------------------------------------------------

  var chart = { add: function () {} };
  var chartEl = $('chart');

  function noChart() {
    if (chartEl) chartEl.hidden = true;
    $('history-details').open = true;
  }

  async function initChart() {
    var h;
    try { h = await L.api('GET', base + '/history?points=200'); } catch (e) { return noChart(); }
    var xs = [];
    var ys = names.map(function () { return []; });
    function push(t, prices) {
      if (xs.length && t < xs[xs.length - 1]) t = xs[xs.length - 1];
      xs.push(t);
      ys.forEach(function (y, i) { y.push(Number(prices[i])); });
    }
    (h.points || []).forEach(function (p) { push(Date.parse(p.at) / 1000, p.prices); });
    if (!xs.length) push(Date.parse(root.dataset.created) / 1000, state.prices);
    push(Date.now() / 1000, state.prices);
    var colors = ['#1d5fbf', '#c2410c', '#15803d', '#7e22ce', '#a16207', '#0f766e'];
    var height = function () { return window.innerWidth < 600 ? 180 : 240; };
    var u;
    try {
      u = new window.uPlot({
        width: chartEl.clientWidth,
        height: height(),
        scales: { y: { range: [0, 1] } },
        series: [{}].concat(names.map(function (n, i) {
          return {
            label: n, stroke: colors[i % colors.length], width: 2,
            paths: window.uPlot.paths.stepped({ align: 1 }),
            value: function (u, v) { return v == null ? '–' : v.toFixed(3); }
          };
        })),
        axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return v.toFixed(2); }); } }],
        cursor: { drag: { x: false, y: false } }
      }, [xs].concat(ys), chartEl);
    } catch (e) { return noChart(); }
    chart.add = function (t, prices) {
      push(t, prices);
      u.setData([xs].concat(ys));
    };
    var width = chartEl.clientWidth;
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        if (chartEl.clientWidth === width) return;
        width = chartEl.clientWidth;
        u.setSize({ width: width, height: height() });
      }).observe(chartEl);
    }
  }

  if (chartEl && window.uPlot) initChart(); else noChart();

  // ---- order ticket ------------------------------------------------------

  var ticket = $('ticket');
  var requote = function () {};
  var preview = $('preview');

  function showPreviewText(text, isError) {
    if (!preview) return;
    preview.className = isError ? 'preview error' : 'preview';
    var p = document.createElement('p');
    p.id = 'preview-text';
    p.textContent = text;
    preview.replaceChildren(p);
  }

  if (ticket) {
    var mode = ticket.elements.mode;
    var qty = $('qty');
    var limit = $('limit');
    var guard = $('guard');
    var button = $('place-order');
    var result = $('order-result');
    var orderKey = null;
    var quoteSeq = 0;
    var inFlight = false;
    var side = function () { return ticket.elements.side.value; };

    // syncFields fits the ticket to the side: only buys spend an amount,
    // only sells sell "all", and the guard is a max cost or a min proceeds.
    var syncFields = function () {
      var sell = side() === 'sell';
      mode.querySelector('option[value="amount"]').disabled = sell;
      mode.querySelector('option[value="all"]').disabled = !sell;
      if (sell && mode.value === 'amount') mode.value = 'shares';
      if (!sell && mode.value === 'all') mode.value = 'amount';
      qty.name = mode.value === 'amount' ? 'amount' : 'shares';
      $('qty-label').textContent = mode.value === 'amount' ? 'Amount to spend' : 'Number of shares';
      $('qty-field').hidden = mode.value === 'all';
      guard.name = sell ? 'min_proceeds' : 'max_cost';
      $('guard-label').firstChild.textContent = sell ? 'Min proceeds ' : 'Max cost ';
      $('guard-hint').textContent = sell
        ? 'Refuse the whole order if prices move and it would pay less than this.'
        : 'Refuse the whole order if prices move and it would cost more than this.';
      if (button && !inFlight) button.textContent = sell ? 'Place sell order' : 'Place buy order';
    };

    // readOrder returns the order the ticket describes, or null when it
    // does not yet say how much.
    var readOrder = function () {
      var o = { outcome: Number(ticket.elements.outcome.value), side: side() };
      if (mode.value === 'all') o.all = true;
      else if (qty.value.trim()) o[qty.name] = qty.value.trim();
      if (limit.value.trim()) o.limit_price = limit.value.trim();
      if (guard.value.trim()) o[guard.name] = guard.value.trim();
      return o.all || o.amount || o.shares || o.limit_price ? o : null;
    };

    var figure = function (text, elId) {
      var s = document.createElement('span');
      s.className = 'figure';
      if (elId) s.id = elId;
      s.textContent = text;
      return s;
    };

    requote = async function () {
      var o = readOrder();
      var mine = ++quoteSeq;
      if (!o) return showPreviewText('Type an amount to see the exact cost.');
      var q = new URLSearchParams();
      Object.keys(o).forEach(function (k) { q.set(k, String(o[k])); });
      var r;
      try {
        r = await L.api('GET', base + '/quote?' + q.toString());
      } catch (err) {
        if (mine === quoteSeq) showPreviewText('No preview: ' + err.message + (err.field ? ' (field: ' + err.field + ')' : ''), true);
        return;
      }
      if (mine !== quoteSeq) return; // a newer preview is on its way
      var sell = r.side === 'sell';
      var p = document.createElement('p');
      p.id = 'preview-text';
      p.append(sell ? 'You receive ' : 'Cost ', figure(sell ? r.proceeds : r.cost, 'preview-cost'),
        ' for ', figure(trim(r.shares), 'preview-shares'), ' shares of ' + names[r.outcome] + '. ',
        'Price after: ', figure(L.price(r.prices[r.outcome]), 'preview-price'), '.');
      if (root.dataset.conditional) {
        // A decision market: say where the money goes before anyone trades.
        p.append(' ', sell ? 'The proceeds stay in this market, to buy here, until the decision.' : 'Money you put in stays in this market until the decision.');
      }
      preview.className = 'preview';
      preview.replaceChildren(p);
    };

    var edited = function (ev) {
      orderKey = null; // a changed ticket is a new order
      result.textContent = '';
      if (ev.target.name === 'side' || ev.target === mode) syncFields();
      later('quote', requote, 250);
    };
    ticket.addEventListener('input', edited);
    ticket.addEventListener('change', edited);

    ticket.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      if (!button || inFlight) return;
      var o = readOrder();
      if (!o) {
        return L.showError(new L.ApiError(400, 'invalid', 'Say how much: an amount, a number of shares or a limit price.', qty.name), ticket);
      }
      // One key per order: a double click, or a retry after a lost answer,
      // reuses it, so the order trades at most once.
      if (!orderKey) orderKey = L.newKey();
      inFlight = true;
      L.busy(button, true, 'Placing order…');
      try {
        var r = await L.api('POST', base + '/orders', o, { 'Idempotency-Key': orderKey });
        orderKey = null;
        L.clearError(ticket);
        result.textContent = (r.side === 'buy' ? 'Bought ' : 'Sold ') + trim(r.shares) + ' shares of ' +
          names[r.outcome] + (r.side === 'buy' ? ' for ' + r.cost : ' for ' + r.proceeds) + '.';
        qty.value = '';
        guard.value = '';
        showPreviewText('Type an amount to see the exact cost.');
        apply({ seq: r.seq, prices: r.prices });
        refreshPosition();
        refreshTrades();
      } catch (err) {
        // A refusal is final; only an answer that never came is retried
        // with the same key.
        if (err.status && err.status < 500) orderKey = null;
        L.showError(err, ticket);
      } finally {
        inFlight = false;
        L.busy(button, false);
        syncFields();
      }
    });

    syncFields();
  }

  // ---- outcome: the treasurer's proposal, a dispute --------------------
  // A dispute opens a jury's case, so the disputer goes on to its page.
  var propose = $('propose-form');
  if (propose) {
    L.submitForm(propose, 'Proposing…', function () {
      return L.api('POST', base + '/proposal', {
        verdict: propose.elements.verdict.value,
        evidence: propose.elements.evidence.value.trim()
      });
    }, function () { location.reload(); });
  }
  var dispute = $('market-dispute');
  if (dispute) {
    L.submitForm(dispute, 'Disputing…', function () {
      return L.api('POST', base + '/dispute', { reason: dispute.elements.reason.value.trim() });
    }, function (k) { location.assign('/cases/' + encodeURIComponent(k.id)); });
  }

  setPolling(3000);
  showMode();
  connect();
})();
