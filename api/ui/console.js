/* tollgate's live calls page.  Plain JavaScript, no framework.
 *
 * Everything shown comes from the REST API with the operator's bearer
 * token, kept in sessionStorage and only ever sent in the Authorization
 * header.  The running calls are fetched once (GET /v1/calls?scope=local)
 * and then kept up to date by the event stream (GET /v1/events, read with
 * fetch() so that the header can be sent); on reconnect they are fetched
 * again.  Values from the server are put in the page as text only.
 */
'use strict';

(function () {
  const KEY = 'tollgate.token';
  const HISTORY = 300;

  const state = {
    token: sessionStorage.getItem(KEY) || '',
    role: null,
    calls: new Map(),      /* id -> call, with _rx: performance.now() */
    ended: new Set(),      /* ids of calls that ended: no update revives them */
    accounts: new Map(),   /* id -> account */
    gateways: new Map(),   /* name -> gateway */
    cps: [], cut: [],
    abort: null,
    retry: null,
    cdrCursor: null,
    lastEvent: 0,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function showError(msg) {
    const p = $('error');
    if (!msg) { p.hidden = true; p.textContent = ''; return; }
    p.hidden = false;
    p.textContent = msg;
  }

  function setLink(on, text) {
    const b = $('link');
    b.className = 'badge ' + (on ? 'on' : 'off');
    b.textContent = text;
  }

  async function api(method, path, body) {
    const opt = { method, headers: { Authorization: 'Bearer ' + state.token },
                  cache: 'no-store' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    const r = await fetch(path, opt);
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) {
      const m = j && j.error ? j.error : r.statusText;
      const err = new Error(method + ' ' + path + ': ' + r.status + ' ' + m);
      err.status = r.status;
      throw err;
    }
    return j;
  }

  /* ------------------------------------------------------------ quality */

  /* MOS from loss and jitter, a simplified E-model (ITU-T G.107) for
   * G.711 with packet loss concealment: one-way delay taken as 20 ms of
   * packetisation + 2 x jitter (the jitter buffer) + 10 ms, delay
   * impairment Id = 0.024 d + 0.11 (d - 177.3) for d > 177.3, effective
   * equipment impairment Ie,eff = 95 Ppl / (Ppl + 25.1) (Ie 0, Bpl 25.1),
   * R = 93.2 - Id - Ie,eff, MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R). */
  function mos(lossPct, jitterMs) {
    const d = 20 + 2 * jitterMs + 10;
    let id = 0.024 * d;
    if (d > 177.3) id += 0.11 * (d - 177.3);
    const ie = 95 * lossPct / (lossPct + 25.1);
    const r = Math.max(0, Math.min(100, 93.2 - id - ie));
    const m = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
    return Math.max(1, Math.min(4.5, m));
  }

  /* the worst direction of every stream of a call */
  function quality(call) {
    const v = Array.isArray(call.media) ? call.media : [];
    let pk = 0, lost = 0, jit = 0, any = false;
    let worst = 0;
    for (const s of v) {
      for (const dir of [s.to_gateway, s.to_caller]) {
        if (!dir) continue;
        any = true;
        const l = Math.max(0, dir.lost || 0);
        const p = dir.packets || 0;
        const pct = p + l > 0 ? 100 * l / (p + l) : 0;
        if (pct >= worst) { worst = pct; pk = p; lost = l; }
        jit = Math.max(jit, (dir.jitter_us || 0) / 1000);
      }
    }
    if (!any) return null;
    return { loss: worst, lost, packets: pk, jitter: jit, mos: mos(worst, jit) };
  }

  /* ------------------------------------------------------------- calls */

  function putCall(c) {
    if (state.ended.has(c.id)) return;
    c._rx = performance.now();
    state.calls.set(c.id, c);
  }

  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
    const mm = String(m).padStart(2, '0'), xx = String(x).padStart(2, '0');
    return h ? h + ':' + mm + ':' + xx : m + ':' + xx;
  }

  /* seconds since receipt, added to what the server counted */
  function elapsed(c) { return (performance.now() - c._rx) / 1000; }

  function secondsLeft(c) {
    if (c.seconds_left === null || c.seconds_left === undefined) return null;
    return Math.max(0, c.seconds_left - elapsed(c));
  }

  function talk(c) {
    if (!c.answer_at) return 0;
    return (c.seconds || 0) + elapsed(c);
  }

  function hangup(id, btn) {
    btn.disabled = true;
    api('DELETE', '/v1/calls/' + encodeURIComponent(id)).then(() => {
      showError(null);
    }).catch((e) => { btn.disabled = false; showError(e.message); });
  }

  function renderCalls() {
    const tb = $('calls').tBodies[0];
    const ids = [...state.calls.keys()].sort((a, b) => {
      const x = state.calls.get(a), y = state.calls.get(b);
      return String(x.setup_at).localeCompare(String(y.setup_at)) ||
        a.localeCompare(b);
    });
    const rows = new Map();
    for (const tr of [...tb.rows]) rows.set(tr.dataset.id, tr);
    for (const [id, tr] of rows) if (!state.calls.has(id)) tr.remove();

    for (const id of ids) {
      const c = state.calls.get(id);
      let tr = rows.get(id);
      if (!tr) {
        tr = el('tr');
        tr.dataset.id = id;
        for (const k of ['caller', 'callee', 'account', 'gateway', 'state']) {
          tr.appendChild(el('td')).dataset.k = k;
        }
        for (const k of ['talk', 'spent', 'left', 'loss', 'jitter', 'mos']) {
          const td = tr.appendChild(el('td', null, 'num'));
          td.dataset.k = k;
        }
        const td = tr.appendChild(el('td'));
        const b = td.appendChild(el('button', 'Hang up', 'hangup'));
        b.type = 'button';
        b.addEventListener('click', () => hangup(id, b));
      }
      tb.appendChild(tr);   /* keeps the order */
      const cell = (k) => tr.querySelector('[data-k="' + k + '"]');
      cell('caller').textContent = c.caller || 'anonymous';
      cell('callee').textContent = c.callee || '';
      cell('account').textContent = c.account || '';
      cell('gateway').textContent = c.gateway || '';
      const st = cell('state');
      st.textContent = c.state || '';
      st.className = 'st-' + (c.state || 'none');
      cell('spent').textContent = c.spent === null || c.spent === undefined ?
        '–' : c.spent;
      const q = quality(c);
      cell('loss').textContent = q ? q.loss.toFixed(1) + ' %' : '–';
      cell('jitter').textContent = q ? q.jitter.toFixed(1) + ' ms' : '–';
      const m = cell('mos');
      m.textContent = q && q.packets > 0 ? q.mos.toFixed(2) : '–';
      m.className = 'num' + (q && q.packets > 0 ?
        (q.mos >= 4 ? ' mos-good' : q.mos >= 3.6 ? ' mos-fair' : ' mos-poor') : '');
      const b = tr.querySelector('button.hangup');
      const ending = c.state === 'terminating' || c.state === 'cancelling';
      b.disabled = state.role !== 'admin' || ending;
      b.title = state.role !== 'admin' ? 'needs an admin token' : '';
    }
    $('call-count').textContent = String(state.calls.size);
    $('no-calls').hidden = state.calls.size > 0;
    tickCalls();
  }

  /* the live columns, four times a second */
  function tickCalls() {
    for (const tr of $('calls').tBodies[0].rows) {
      const c = state.calls.get(tr.dataset.id);
      if (!c) continue;
      tr.querySelector('[data-k="talk"]').textContent = fmtDur(talk(c));
      const l = secondsLeft(c);
      const td = tr.querySelector('[data-k="left"]');
      td.textContent = l === null ? '–' : fmtDur(l);
      td.dataset.seconds = l === null ? '' : String(Math.floor(l));
      td.className = 'num' + (l !== null && l < 30 ? ' low' : '');
    }
  }

  async function loadCalls() {
    const got = new Map();
    let cursor = null, pages = 0;
    do {
      const q = '/v1/calls?scope=local&limit=1000' +
        (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      const j = await api('GET', q);
      for (const c of j.calls || []) got.set(c.id, c);
      cursor = j.next_cursor || null;
    } while (cursor && ++pages < 100);
    state.calls.clear();
    for (const c of got.values()) putCall(c);
    renderCalls();
  }

  /* ---------------------------------------------------------- accounts */

  function topup(id, input, btn) {
    const amount = input.value.trim();
    if (!/^[0-9]+(\.[0-9]{1,6})?$/.test(amount) || Number(amount) <= 0) {
      showError('top-up: the amount must be a positive decimal, e.g. 5.00');
      return;
    }
    btn.disabled = true;
    api('POST', '/v1/accounts/' + id + '/credit', { op: 'add', amount })
      .then((j) => {
        const a = state.accounts.get(id);
        if (a) { a.balance = j.balance; renderAccounts(); }
        input.value = '';
        showError(null);
      }).catch((e) => showError(e.message))
      .finally(() => { btn.disabled = state.role !== 'admin'; });
  }

  function renderAccounts() {
    const tb = $('accounts').tBodies[0];
    const ids = [...state.accounts.keys()].sort((a, b) => a - b);
    const rows = new Map();
    for (const tr of [...tb.rows]) rows.set(Number(tr.dataset.id), tr);
    for (const [id, tr] of rows) if (!state.accounts.has(id)) tr.remove();
    for (const id of ids) {
      const a = state.accounts.get(id);
      let tr = rows.get(id);
      if (!tr) {
        tr = el('tr');
        tr.dataset.id = String(id);
        for (const k of ['id', 'name', 'status']) tr.appendChild(el('td')).dataset.k = k;
        for (const k of ['balance', 'calls']) {
          tr.appendChild(el('td', null, 'num')).dataset.k = k;
        }
        const f = el('form');
        const inp = el('input');
        inp.name = 'amount'; inp.placeholder = '0.00'; inp.inputMode = 'decimal';
        const b = el('button', 'Top up');
        b.type = 'submit';
        f.append(inp, b);
        f.addEventListener('submit', (ev) => { ev.preventDefault(); topup(id, inp, b); });
        tr.appendChild(el('td')).appendChild(f);
      }
      tb.appendChild(tr);
      const cell = (k) => tr.querySelector('[data-k="' + k + '"]');
      cell('id').textContent = String(a.id);
      cell('name').textContent = a.name || '';
      cell('status').textContent = a.status || '';
      cell('balance').textContent = (a.balance || '') + (a.currency ? ' ' + a.currency : '');
      let n = 0;
      for (const c of state.calls.values()) if (c.account_id === id) n++;
      cell('calls').textContent = String(n);
      const dis = state.role !== 'admin';
      tr.querySelector('input').disabled = dis;
      tr.querySelector('button').disabled = dis;
    }
  }

  async function loadAccounts() {
    const got = new Map();
    let cursor = null, pages = 0;
    do {
      const j = await api('GET', '/v1/accounts?limit=1000' +
        (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      for (const a of j.accounts || []) got.set(a.id, a);
      cursor = j.next_cursor || null;
    } while (cursor && ++pages < 20);
    state.accounts = got;
    renderAccounts();
  }

  /* ---------------------------------------------------------- gateways */

  function asr(g) {
    if (typeof g.asr === 'number') return (100 * g.asr).toFixed(0) + ' %';
    return '–';
  }

  function renderGateways() {
    const tb = $('gateways').tBodies[0];
    tb.textContent = '';
    const names = [...state.gateways.keys()].sort();
    for (const n of names) {
      const g = state.gateways.get(n);
      const tr = el('tr');
      tr.dataset.name = n;
      tr.appendChild(el('td', n));
      tr.appendChild(el('td', g.address || ''));
      tr.appendChild(el('td', g.state || '', 'gw-' + (g.state || 'none')));
      tr.appendChild(el('td', g.since ? new Date(g.since).toLocaleTimeString() : ''));
      tr.appendChild(el('td', g.calls === undefined ? '' : g.calls, 'num'));
      tr.appendChild(el('td', asr(g), 'num'));
      tr.appendChild(el('td', g.state_reason || ''));
      tb.appendChild(tr);
    }
  }

  async function loadGateways() {
    const j = await api('GET', '/v1/gateways');
    state.gateways.clear();
    for (const g of j.gateways || []) state.gateways.set(g.name, g);
    renderGateways();
  }

  /* ------------------------------------------------------------- chart */

  function drawChart() {
    const cv = $('chart');
    const w = cv.clientWidth || 900, h = cv.clientHeight || 160;
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = 28;
    const max = Math.max(1, ...state.cps, ...state.cut);
    const top = Math.ceil(max);
    g.strokeStyle = '#d9dee5'; g.fillStyle = '#6b7480'; g.lineWidth = 1;
    g.font = '11px system-ui, sans-serif';
    for (let i = 0; i <= 4; i++) {
      const y = h - 16 - (h - 28) * i / 4;
      g.beginPath(); g.moveTo(pad, y); g.lineTo(w - 4, y); g.stroke();
      g.fillText((top * i / 4).toFixed(top < 4 ? 1 : 0), 2, y + 4);
    }
    for (let m = 0; m <= 5; m++) {
      const x = pad + (w - pad - 4) * (1 - m / 5);
      g.fillText(m ? '-' + m + ' min' : 'now', Math.max(pad, x - 16), h - 2);
    }
    const line = (v, colour) => {
      g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
      const n = v.length;
      for (let i = 0; i < n; i++) {
        const x = pad + (w - pad - 4) * (HISTORY - n + i) / (HISTORY - 1);
        const y = h - 16 - (h - 28) * v[i] / top;
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      }
      g.stroke();
    };
    line(state.cps, '#2856b6');
    line(state.cut, '#b3261e');
    const last = state.cps.length ? state.cps[state.cps.length - 1] : 0;
    const sum = state.cut.reduce((a, b) => a + b, 0);
    $('chart-now').textContent = '(now ' + last + ' calls/s; ' + sum +
      ' cut-offs in 5 min)';
  }

  function pushStats(s, replace) {
    if (replace) { state.cps = []; state.cut = []; }
    for (const v of s.calls_per_s || []) state.cps.push(v);
    for (const v of s.cutoffs_per_s || []) state.cut.push(v);
    state.cps = state.cps.slice(-HISTORY);
    state.cut = state.cut.slice(-HISTORY);
    drawChart();
  }

  /* -------------------------------------------------------------- CDRs */

  async function searchCdrs(more) {
    const f = $('cdr-form');
    const p = new URLSearchParams();
    for (const k of ['account', 'from', 'to', 'limit']) {
      const v = f.elements[k].value.trim();
      if (v) p.set(k, v);
    }
    if (more && state.cdrCursor) p.set('cursor', state.cdrCursor);
    const tb = $('cdrs').tBodies[0];
    try {
      const j = await api('GET', '/v1/cdrs?' + p.toString());
      if (!more) tb.textContent = '';
      for (const c of j.cdrs || []) {
        const tr = el('tr');
        tr.dataset.callId = c.call_id;
        tr.appendChild(el('td', c.setup_at ? new Date(c.setup_at).toLocaleString() : ''));
        for (const k of ['caller', 'callee', 'account_id', 'gateway']) tr.appendChild(el('td', c[k]));
        tr.appendChild(el('td', c.billed_seconds, 'num'));
        tr.appendChild(el('td', c.cost, 'num'));
        for (const k of ['sip_code', 'reason', 'hangup_by']) tr.appendChild(el('td', c[k]));
        tb.appendChild(tr);
      }
      state.cdrCursor = j.next_cursor || null;
      $('cdr-more').disabled = !state.cdrCursor;
      showError(null);
    } catch (e) { showError(e.message); }
  }

  /* ------------------------------------------------------------ events */

  function onEvent(type, data) {
    state.lastEvent = performance.now();
    switch (type) {
    case 'hello':
      state.role = data.role;
      $('role').textContent = data.role + ' token';
      $('node').textContent = data.node ? 'node ' + data.node : '';
      pushStats(data, true);
      break;
    case 'call_new':
    case 'call_update':
      putCall(data);
      renderCalls();
      renderAccounts();
      break;
    case 'call_end': {
      const c = state.calls.get(data.id);
      state.calls.delete(data.id);
      state.ended.add(data.id);
      if (state.ended.size > 1000) state.ended.delete(state.ended.values().next().value);
      renderCalls();
      renderAccounts();
      const li = el('li', new Date().toLocaleTimeString() + ' ' +
        (c ? (c.caller || 'anonymous') + ' → ' + (c.callee || '') : data.id) +
        ': ' + data.reason + (data.code ? ' (' + data.code + ')' : '') +
        ', ' + data.seconds + ' s');
      li.dataset.id = data.id;
      $('ended').prepend(li);
      while ($('ended').children.length > 50) $('ended').lastChild.remove();
      break;
    }
    case 'account': {
      const a = state.accounts.get(data.id);
      if (a) { a.balance = data.balance; renderAccounts(); }
      else loadAccounts().catch(() => {});
      break;
    }
    case 'gateway':
      for (const g of data.gateways || []) {
        const old = state.gateways.get(g.name) || {};
        state.gateways.set(g.name, Object.assign(old, g));
      }
      renderGateways();
      break;
    case 'stats':
      pushStats(data, false);
      break;
    default:
      break;
    }
  }

  /* one text/event-stream block: "event:", "data:" lines */
  function parseBlock(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line[0] === ':') continue;
      const i = line.indexOf(':');
      const f = i < 0 ? line : line.slice(0, i);
      let v = i < 0 ? '' : line.slice(i + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (f === 'event') type = v;
      else if (f === 'data') data.push(v);
    }
    if (!data.length) return;
    try { onEvent(type, JSON.parse(data.join('\n'))); }
    catch (e) { console.warn('event', type, e); }
  }

  async function stream() {
    const ac = new AbortController();
    state.abort = ac;
    const r = await fetch('/v1/events', {
      headers: { Authorization: 'Bearer ' + state.token,
                 Accept: 'text/event-stream' },
      cache: 'no-store', signal: ac.signal });
    if (!r.ok) {
      const err = new Error('GET /v1/events: ' + r.status);
      err.status = r.status;
      throw err;
    }
    setLink(true, 'live');
    const rd = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '', first = true;
    for (;;) {
      const { value, done } = await rd.read();
      if (done) break;
      buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        parseBlock(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
      if (first) {
        /* the stream is open: what happens now comes as events, so the
           list is read once and the events move it on */
        first = false;
        await Promise.all([loadCalls(), loadAccounts(), loadGateways()]);
      }
    }
  }

  function connect() {
    clearTimeout(state.retry);
    if (state.abort) state.abort.abort();
    if (!state.token) { setLink(false, 'no token'); return; }
    setLink(false, 'connecting');
    stream().then(() => {
      setLink(false, 'reconnecting');
      state.retry = setTimeout(connect, 2000);
    }).catch((e) => {
      if (e.name === 'AbortError') return;
      if (e.status === 401) {
        setLink(false, 'token refused');
        showError('The API refused the token (401).');
        return;
      }
      setLink(false, 'reconnecting');
      showError(e.message);
      state.retry = setTimeout(connect, 2000);
    });
  }

  /* -------------------------------------------------------------- start */

  document.addEventListener('DOMContentLoaded', () => {
    $('token').value = state.token ? '••••••••' : '';
    $('login').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (t && t !== '••••••••') {
        state.token = t;
        sessionStorage.setItem(KEY, t);
      }
      showError(null);
      connect();
    });
    $('logout').addEventListener('click', () => {
      sessionStorage.removeItem(KEY);
      state.token = '';
      state.role = null;
      $('token').value = '';
      $('role').textContent = '';
      if (state.abort) state.abort.abort();
      state.calls.clear(); state.accounts.clear(); state.gateways.clear();
      renderCalls(); renderAccounts(); renderGateways();
      setLink(false, 'not connected');
    });
    $('cdr-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchCdrs(false); });
    $('cdr-more').addEventListener('click', () => searchCdrs(true));
    setInterval(tickCalls, 250);
    window.addEventListener('resize', drawChart);
    drawChart();
    renderCalls();
    connect();
  });
})();
