/*
 * The voice-and-score dashboard: the live call log, charts, decision traces
 * and list management, over the admin JSON API (docs/admin-api.md).
 *
 * Plain ES2020, no dependencies, no build step: this file is embedded in
 * the server binary and served as /app.js. Every value from the API goes
 * into the page through textContent or setAttribute, never as markup:
 * callers' raw caller IDs are chosen by whoever places the call.
 */
'use strict';

(() => {
  const POLL_MS = 2500;
  const LISTS_EVERY_MS = 10000;
  const PAGE = 50;
  const MAX_LIMIT = 500;
  const TOKEN_KEY = 'vs-admin-token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const DECISIONS = ['allow', 'challenge', 'block'];

  const $ = (id) => document.getElementById(id);

  /* ---------------------------------------------------------------- *
   * Small helpers
   * ---------------------------------------------------------------- */

  /* An element with attributes and children (strings become text). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
    }
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function')
        e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  const str = (v) => (v === null || v === undefined ? '' : String(v));
  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  /* Local time: "14:03:07" today, "2026-11-30 14:03" on another day. */
  function fmtWhen(ms) {
    if (!isNum(ms) || ms <= 0) return '';
    const d = new Date(ms);
    const now = new Date();
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === now.toDateString()) return hms;
    return `${fmtDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function fmtDate(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  /* Local date and time in full: "2026-12-01 14:03:07". */
  function fmtFull(ms) {
    if (!isNum(ms) || ms <= 0) return '';
    const d = new Date(ms);
    return `${fmtDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtDuration(s) {
    if (!isNum(s)) return '';
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  /* "in 3 h", "in 12 d": how far ahead a time is. */
  function fmtAhead(ms) {
    const s = Math.max(0, Math.round((ms - Date.now()) / 1000));
    if (s < 90) return `in ${s} s`;
    if (s < 90 * 60) return `in ${Math.round(s / 60)} min`;
    if (s < 36 * 3600) return `in ${Math.round(s / 3600)} h`;
    return `in ${Math.round(s / 86400)} d`;
  }

  function clockNow() {
    const d = new Date();
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setError(node, message) {
    node.textContent = message || '';
    show(node, Boolean(message));
  }

  /* ---------------------------------------------------------------- *
   * The API, with the bearer token
   * ---------------------------------------------------------------- */

  class AuthError extends Error {}

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function loadToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function saveToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* storage disabled: the token lasts as long as the page */
    }
  }

  let token = loadToken();
  let authPending = false;

  /*
   * One API call; paths are relative to the page ("api/calls"), so the
   * dashboard also works behind a proxy that serves it under a sub-path.
   * Resolves to the parsed JSON (null for 204), rejects with AuthError
   * after asking for the token on 401, or ApiError with the server's reason.
   */
  async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
    } catch (_) {
      throw new ApiError(0, 'cannot reach the server');
    }
    if (res.status === 401) {
      askToken(token ? 'The server refused that token.' : '');
      throw new AuthError('the admin token is needed');
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        if (res.ok) throw new ApiError(res.status, 'the server did not answer JSON');
      }
    }
    if (!res.ok) {
      const why = data && typeof data.error === 'string' ? data.error : `HTTP ${res.status}`;
      throw new ApiError(res.status, why);
    }
    return data;
  }

  /* A list entry in a URL path: "1555*" is "1555%2A". */
  function entryPath(kind, entry) {
    return `api/lists/${encodeURIComponent(kind)}/${encodeURIComponent(entry).replace(/\*/g, '%2A')}`;
  }

  /* ---------------------------------------------------------------- *
   * Token prompt
   * ---------------------------------------------------------------- */

  const tokenDialog = $('token-dialog');

  function askToken(why) {
    authPending = true;
    setStatus('Sign in needed', 'warn');
    if (tokenDialog.open) {
      if (why) $('token-why').textContent = why;
      return;
    }
    $('token-why').textContent =
      why || 'The admin API needs its bearer token (admin.token in the configuration).';
    $('token-input').value = '';
    tokenDialog.showModal();
    $('token-input').focus();
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    token = t;
    saveToken(t);
    authPending = false;
    tokenDialog.close();
    lastLists = 0;
    pollNow();
  });

  $('token-forget').addEventListener('click', () => {
    token = '';
    saveToken('');
    $('token-input').value = '';
    $('token-why').textContent = 'Token forgotten. Enter one to go on.';
    $('token-input').focus();
  });

  $('token-button').addEventListener('click', () => {
    askToken(token ? 'Enter a new token, or forget the one in use.' : '');
  });

  /* ---------------------------------------------------------------- *
   * Status line and toast
   * ---------------------------------------------------------------- */

  function setStatus(text, kind) {
    const s = $('status');
    s.textContent = text;
    s.className = `status-text ${kind || ''}`;
  }

  let toastTimer = 0;

  function toast(text, action) {
    const t = $('toast');
    const b = $('toast-action');
    $('toast-text').textContent = text;
    b.hidden = !action;
    b.onclick = null;
    if (action) {
      b.textContent = action.label;
      b.onclick = () => {
        t.hidden = true;
        action.run();
      };
    }
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      t.hidden = true;
    }, action ? 10000 : 5000);
  }

  /* ---------------------------------------------------------------- *
   * Views
   * ---------------------------------------------------------------- */

  function setView(name) {
    for (const b of document.querySelectorAll('.tab')) {
      b.setAttribute('aria-pressed', String(b.dataset.view === name));
    }
    show($('view-calls'), name === 'calls');
    show($('view-lists'), name === 'lists');
    if (name === 'lists') lastLists = 0; // load them now
    pollNow();
    const hash = name === 'lists' ? '#lists' : '';
    if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname + location.search);
  }

  for (const b of document.querySelectorAll('.tab')) {
    b.addEventListener('click', () => setView(b.dataset.view));
  }

  /* ---------------------------------------------------------------- *
   * Call log
   * ---------------------------------------------------------------- */

  const log = {
    limit: PAGE,
    seq: 0,
    rows: new Map(), // ref -> <tr>
    rendered: false,
  };

  function callsQuery() {
    const p = new URLSearchParams();
    const decision = $('f-decision').value;
    const caller = $('f-caller').value.trim();
    let since = $('f-since').value;
    if (since === 'custom') {
      const from = $('f-from').value;
      since = from ? String(new Date(from).getTime()) : '';
    }
    if (decision) p.set('decision', decision);
    if (caller) p.set('caller', caller);
    if (since && since !== 'NaN') p.set('since', since);
    p.set('limit', String(log.limit));
    return `api/calls?${p}`;
  }

  async function loadCalls() {
    const seq = ++log.seq;
    let data;
    try {
      data = await api(callsQuery());
    } catch (e) {
      if (seq === log.seq && e instanceof ApiError && e.status >= 400 && e.status < 500)
        setError($('log-error'), `Filter refused: ${e.message}`);
      throw e;
    }
    if (seq !== log.seq) return; // the filters changed meanwhile
    setError($('log-error'), '');
    renderCalls(data && Array.isArray(data.calls) ? data.calls : [], Boolean(data && data.more));
  }

  function badge(decision, shadow) {
    const d = str(decision) || 'none';
    const b = el('span', { class: `badge decision-${DECISIONS.includes(d) ? d : 'none'}`, 'data-testid': 'decision-badge' }, d);
    if (!shadow) return b;
    return el('span', { class: 'badge-wrap' }, b, el('span', { class: 'tag', title: 'shadow mode: recorded, not enforced' }, 'shadow'));
  }

  function callerCell(c) {
    const caller = str(c.caller);
    const raw = str(c.caller_raw);
    const main = el('span', { class: 'caller' }, caller || 'unknown');
    if (!caller) main.classList.add('muted');
    const wrap = el('span', { class: 'caller-wrap' }, main);
    if (raw && raw !== caller && raw !== `+${caller}`) {
      wrap.append(el('span', { class: 'raw', title: 'caller ID as sent' }, `sent as ${raw}`));
    }
    return wrap;
  }

  /* What a row shows, to know when it must be redrawn. */
  function rowSignature(c) {
    return JSON.stringify([c.started_ms, c.caller, c.caller_raw, c.decision, c.shadow, c.reason, c.score, c.state]);
  }

  function fillRow(tr, c) {
    const caller = str(c.caller);
    const decision = str(c.decision) || 'none';
    tr.dataset.caller = caller;
    tr.dataset.decision = decision;
    tr.dataset.state = str(c.state);
    tr.className = `call-row state-${str(c.state)}${tr.classList.contains('selected') ? ' selected' : ''}`;

    const when = el('button', {
      type: 'button',
      class: 'link',
      'data-testid': 'row-open',
      title: fmtFull(c.started_ms),
      'aria-label': `Decision trace of the call from ${caller || 'an unknown caller'} at ${fmtFull(c.started_ms)}`,
    }, el('time', { datetime: isNum(c.started_ms) ? new Date(c.started_ms).toISOString() : null }, fmtWhen(c.started_ms)));
    const blockBtn = el('button', {
      type: 'button',
      class: 'small danger',
      'data-testid': 'row-block',
      'aria-label': `Block ${caller}`,
      disabled: !caller,
    }, 'Block');
    const allowBtn = el('button', {
      type: 'button',
      class: 'small secondary',
      'data-testid': 'row-allow',
      'aria-label': `Allow ${caller}`,
      disabled: !caller,
    }, 'Allow');
    blockBtn.addEventListener('click', (ev) => {
      ev.stopPropagation();
      openQuick('block', caller);
    });
    allowBtn.addEventListener('click', (ev) => {
      ev.stopPropagation();
      openQuick('allow', caller);
    });

    tr.replaceChildren(
      el('td', { class: 'c-time', 'data-label': 'Time' }, when),
      el('td', { class: 'c-caller', 'data-label': 'Caller' }, callerCell(c)),
      el('td', { class: 'c-decision', 'data-label': 'Decision' }, badge(decision, c.shadow)),
      el('td', { class: 'c-reason', 'data-label': 'Reason', 'data-testid': 'call-reason' }, str(c.reason)),
      el('td', { class: 'c-score num', 'data-label': 'Score', 'data-testid': 'call-score' }, isNum(c.score) ? String(c.score) : '–'),
      el('td', { class: 'c-state', 'data-label': 'State', 'data-testid': 'call-state' }, str(c.state)),
      el('td', { class: 'c-actions' }, el('span', { class: 'row-actions' }, blockBtn, allowBtn)),
    );
  }

  function newRow(ref) {
    // The whole row opens the trace on a click or a tap; from the keyboard,
    // the time is a button that does.
    const tr = el('tr', { 'data-testid': 'call-row', 'data-ref': ref });
    tr.addEventListener('click', () => openTrace(ref));
    return tr;
  }

  function renderCalls(calls, more) {
    const body = $('calls-body');
    const seen = new Set();
    let i = 0;
    for (const c of calls) {
      const ref = str(c.ref);
      if (!ref || seen.has(ref)) continue;
      seen.add(ref);
      let tr = log.rows.get(ref);
      if (!tr) {
        tr = newRow(ref);
        log.rows.set(ref, tr);
        if (log.rendered) tr.classList.add('fresh');
      }
      const sig = rowSignature(c);
      if (tr.dataset.sig !== sig) {
        const fresh = tr.classList.contains('fresh');
        fillRow(tr, c);
        if (fresh) tr.classList.add('fresh');
        tr.dataset.sig = sig;
      }
      if (traceRef === ref) tr.classList.add('selected');
      // Move the row only when it is not already in place, so that rows
      // stay put (and clickable) between polls.
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
      i++;
    }
    for (const [ref, tr] of log.rows) {
      if (!seen.has(ref)) {
        tr.remove();
        log.rows.delete(ref);
      }
    }
    log.rendered = true;
    show($('calls-empty'), seen.size === 0);
    const moreBtn = $('calls-more');
    show(moreBtn, more && log.limit < MAX_LIMIT);
    $('log-count').textContent =
      seen.size === 0 ? '' : `${seen.size}${more ? '+' : ''} call${seen.size === 1 ? '' : 's'}, newest first`;
    setTimeout(() => {
      for (const tr of body.querySelectorAll('tr.fresh')) tr.classList.remove('fresh');
    }, 1600);
  }

  function filtersChanged() {
    log.limit = PAGE;
    log.seq++; // any answer in flight is for the old filters
    show($('f-from-label'), $('f-since').value === 'custom');
    pollNow();
  }

  let callerTimer = 0;
  $('f-decision').addEventListener('change', filtersChanged);
  $('f-since').addEventListener('change', filtersChanged);
  $('f-from').addEventListener('change', filtersChanged);
  $('f-caller').addEventListener('input', () => {
    clearTimeout(callerTimer);
    callerTimer = setTimeout(filtersChanged, 300);
  });
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    filtersChanged();
  });
  $('filters').addEventListener('reset', () => setTimeout(filtersChanged, 0));
  $('calls-more').addEventListener('click', () => {
    log.limit = Math.min(MAX_LIMIT, log.limit + PAGE);
    pollNow();
  });

  /* ---------------------------------------------------------------- *
   * Stats and charts
   * ---------------------------------------------------------------- */

  let lastStats = null;
  let statsSeq = 0;

  async function loadStats() {
    const seq = ++statsSeq;
    const data = await api(`api/stats?since=${encodeURIComponent($('stats-since').value)}`);
    if (seq !== statsSeq) return;
    lastStats = data || {};
    renderStats();
  }

  $('stats-since').addEventListener('change', () => {
    statsSeq++;
    pollNow();
  });

  function renderStats() {
    const s = lastStats;
    if (!s) return;
    const by = s.by_decision || {};
    const n = (v) => (isNum(v) ? String(v) : '0');
    $('sum-total').textContent = n(s.total);
    $('sum-allow').textContent = n(by.allow);
    $('sum-challenge').textContent = n(by.challenge);
    $('sum-block').textContent = n(by.block);
    $('sum-rate').textContent = isNum(s.block_rate) ? `${(s.block_rate * 100).toFixed(1)} %` : '–';
    const ch = s.challenges || {};
    $('sum-challenges').textContent = `${n(ch.passed)} / ${n(ch.failed)}`;
    drawHourly($('chart-hourly'), Array.isArray(s.hourly) ? s.hourly : []);
    drawScores($('chart-scores'), Array.isArray(s.score_histogram) ? s.score_histogram : []);
  }

  /* A round axis maximum and its tick step for values up to `max`. */
  function niceScale(max, ticks = 4) {
    if (!(max > 0)) return { top: ticks, step: 1 };
    const raw = max / ticks;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw && Number.isInteger(v)) || Math.ceil(raw);
    return { top: Math.ceil(max / step) * step, step };
  }

  function chartFrame(box, height, label) {
    const width = Math.max(260, Math.floor(box.clientWidth || 600));
    const root = svg('svg', {
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': label,
      class: 'chart-svg',
    });
    return { root, width, height };
  }

  function yAxis(root, m, plotH, width, scale) {
    for (let v = 0; v <= scale.top; v += scale.step) {
      const y = m.top + plotH - (v / scale.top) * plotH;
      root.append(svg('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, class: v === 0 ? 'axis' : 'grid' }));
      root.append(svg('text', { x: m.left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, v));
    }
  }

  function drawHourly(box, hourly) {
    const m = { top: 12, right: 8, bottom: 30, left: 38 };
    let total = 0;
    let peak = 0;
    for (const h of hourly) {
      const sum = DECISIONS.reduce((a, d) => a + (isNum(h[d]) ? h[d] : 0), 0);
      total += sum;
      peak = Math.max(peak, sum);
    }
    const f = chartFrame(box, 220, `Calls per hour by decision: ${total} calls in ${hourly.length} hours, at most ${peak} in one hour`);
    const plotW = f.width - m.left - m.right;
    const plotH = f.height - m.top - m.bottom;
    const scale = niceScale(peak);
    yAxis(f.root, m, plotH, f.width, scale);

    const n = Math.max(1, hourly.length);
    const slot = plotW / n;
    const gap = Math.min(3, slot * 0.2);
    // A label every `every` hours (on hours divisible by it), ~48 px apart;
    // midnight shows the date instead.
    const every = [1, 2, 3, 4, 6, 12, 24].find((k) => k * slot >= 48) || 24;
    const days = every === 24 ? Math.max(1, Math.ceil(48 / (slot * 24))) : 1; // for long periods
    hourly.forEach((h, i) => {
      const x = m.left + i * slot;
      const g = svg('g', { class: 'hour', 'data-hour-ms': str(h.hour_ms) });
      const when = isNum(h.hour_ms) ? new Date(h.hour_ms) : null;
      const label = when ? `${fmtDate(when)} ${pad(when.getHours())}:00` : `hour ${i + 1}`;
      const counts = DECISIONS.map((d) => (isNum(h[d]) ? h[d] : 0));
      g.append(svg('title', null, `${label}: ${counts[0]} allowed, ${counts[1]} challenged, ${counts[2]} blocked`));
      // A transparent column so the tooltip works over empty hours too.
      g.append(svg('rect', { x, y: m.top, width: slot, height: plotH, class: 'hit' }));
      let y = m.top + plotH;
      DECISIONS.forEach((d, k) => {
        const c = counts[k];
        if (c <= 0) return;
        const hgt = (c / scale.top) * plotH;
        y -= hgt;
        g.append(svg('rect', {
          x: x + gap / 2,
          y,
          width: Math.max(1, slot - gap),
          height: hgt,
          class: `bar ${d}`,
          'data-decision': d,
          'data-count': c,
        }));
      });
      f.root.append(g);
      if (when && when.getHours() % every === 0 &&
          (every < 24 || Math.round(when.getTime() / 86400e3) % days === 0)) {
        const text = when.getHours() === 0 ? `${pad(when.getMonth() + 1)}-${pad(when.getDate())}` : `${pad(when.getHours())}:00`;
        const lx = Math.min(Math.max(x, m.left + 14), f.width - m.right - 16);
        f.root.append(svg('line', { x1: x, x2: x, y1: m.top + plotH, y2: m.top + plotH + 4, class: 'axis' }));
        f.root.append(svg('text', { x: lx, y: f.height - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, text));
      }
    });
    if (total === 0) {
      f.root.append(svg('text', { x: m.left + plotW / 2, y: m.top + plotH / 2, class: 'empty-note', 'text-anchor': 'middle' }, 'No calls in this period'));
    }
    box.replaceChildren(f.root);
  }

  function drawScores(box, buckets) {
    const m = { top: 18, right: 8, bottom: 30, left: 38 };
    let total = 0;
    let peak = 0;
    for (const b of buckets) {
      const c = isNum(b.count) ? b.count : 0;
      total += c;
      peak = Math.max(peak, c);
    }
    const f = chartFrame(box, 220, `Score distribution: ${total} scored calls in ${buckets.length} buckets`);
    const plotW = f.width - m.left - m.right;
    const plotH = f.height - m.top - m.bottom;
    const scale = niceScale(peak);
    yAxis(f.root, m, plotH, f.width, scale);
    const n = Math.max(1, buckets.length);
    const slot = plotW / n;
    const gap = Math.min(8, slot * 0.2);
    buckets.forEach((b, i) => {
      const c = isNum(b.count) ? b.count : 0;
      const x = m.left + i * slot;
      const g = svg('g', { class: 'bucket' });
      g.append(svg('title', null, `score ${str(b.from)}–${str(b.to)}: ${c} call${c === 1 ? '' : 's'}`));
      g.append(svg('rect', { x, y: m.top, width: slot, height: plotH, class: 'hit' }));
      if (c > 0) {
        const hgt = (c / scale.top) * plotH;
        // Hue from green (low risk) to red (high risk).
        const hue = Math.round(130 - (130 * i) / Math.max(1, n - 1));
        g.append(svg('rect', {
          x: x + gap / 2,
          y: m.top + plotH - hgt,
          width: Math.max(1, slot - gap),
          height: hgt,
          class: 'bar score',
          fill: `hsl(${hue}, 60%, 48%)`,
          'data-from': str(b.from),
          'data-to': str(b.to),
          'data-count': c,
        }));
        g.append(svg('text', { x: x + slot / 2, y: m.top + plotH - hgt - 4, class: 'value', 'text-anchor': 'middle' }, c));
      }
      f.root.append(g);
      if (slot >= 26 || i % 2 === 0) {
        f.root.append(svg('text', { x: x + slot / 2, y: f.height - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, str(b.from)));
      }
    });
    if (total === 0) {
      f.root.append(svg('text', { x: m.left + plotW / 2, y: m.top + plotH / 2, class: 'empty-note', 'text-anchor': 'middle' }, 'No scored calls in this period'));
    }
    box.replaceChildren(f.root);
  }

  // Redraw the charts at their new width when the layout changes.
  let resizeFrame = 0;
  let lastWidths = '';
  const onResize = () => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      const w = `${$('chart-hourly').clientWidth}/${$('chart-scores').clientWidth}`;
      if (w !== lastWidths) {
        lastWidths = w;
        renderStats();
      }
    });
  };
  if ('ResizeObserver' in window) {
    const ro = new ResizeObserver(onResize);
    ro.observe($('chart-hourly'));
    ro.observe($('chart-scores'));
  } else {
    window.addEventListener('resize', onResize);
  }

  /* ---------------------------------------------------------------- *
   * Decision trace
   * ---------------------------------------------------------------- */

  const traceDialog = $('trace');
  let traceRef = null;
  let traceCall = null;
  let traceSeq = 0;

  function openTrace(ref) {
    traceRef = ref;
    traceCall = null;
    for (const tr of log.rows.values()) tr.classList.toggle('selected', tr.dataset.ref === ref);
    $('trace-ref').textContent = ref;
    setError($('trace-error'), '');
    $('trace-body').hidden = true;
    $('trace').setAttribute('aria-busy', 'true');
    if (!traceDialog.open) traceDialog.showModal();
    $('trace-close').focus();
    loadTrace().catch(() => {});
  }

  async function loadTrace() {
    const ref = traceRef;
    if (!ref) return;
    const seq = ++traceSeq;
    let data;
    try {
      data = await api(`api/calls/${encodeURIComponent(ref)}`);
    } catch (e) {
      if (seq === traceSeq && !(e instanceof AuthError)) {
        setError($('trace-error'), e.status === 404 ? 'There is no such call.' : `Could not load the trace: ${e.message}`);
        $('trace').removeAttribute('aria-busy');
      }
      throw e;
    }
    if (seq !== traceSeq || ref !== traceRef) return;
    renderTrace(data || {});
  }

  function fieldList(dl, fields) {
    dl.replaceChildren();
    for (const [name, label, value] of fields) {
      const v = str(value);
      dl.append(
        el('div', { class: 'field', 'data-field': name },
          el('dt', null, label),
          el('dd', { class: v ? '' : 'muted', 'data-testid': `field-${name}` }, v || '—')),
      );
    }
  }

  function renderTrace(data) {
    const c = data.call || {};
    traceCall = c;
    $('trace').removeAttribute('aria-busy');
    $('trace-body').hidden = false;
    $('trace-caller').textContent = str(c.caller) || 'unknown caller';
    const d = str(c.decision) || 'none';
    const b = $('trace-decision');
    b.textContent = c.shadow ? `${d} (shadow)` : d;
    b.className = `badge decision-${DECISIONS.includes(d) ? d : 'none'}`;
    $('trace-reason').textContent = str(c.reason);

    const body = $('trace-steps');
    body.replaceChildren();
    const steps = Array.isArray(data.steps) ? data.steps : [];
    for (const s of steps) {
      const decisive = s.decisive === true;
      body.append(
        el('tr', {
          'data-testid': 'trace-step',
          'data-step': str(s.step),
          'data-decisive': String(decisive),
          class: decisive ? 'decisive' : null,
        },
        el('td', { class: 'mono' }, str(s.step)),
        el('td', { class: 'mono' }, str(s.outcome)),
        el('td', null, decisive ? el('span', { class: 'tag decisive-tag' }, 'decided') : '')),
      );
    }
    if (steps.length === 0) {
      body.append(el('tr', null, el('td', { colspan: '3', class: 'muted' }, 'No decision yet.')));
    }

    fieldList($('trace-score'), [
      ['score', 'Score', isNum(c.score) ? c.score : ''],
      ['risk_level', 'Risk level', c.risk_level],
      ['recommendation', 'Recommendation', c.recommendation],
      ['phone_type', 'Phone type', c.phone_type],
      ['score_source', 'Source', c.score_source],
      ['score_ms', 'Lookup time', isNum(c.score_ms) ? `${c.score_ms} ms` : ''],
      ['score_error', 'Error', c.score_error],
      ['score_ref', 'Score reference', c.score_ref],
      ['velocity_count', 'Calls in window', c.velocity_count],
    ]);
    fieldList($('trace-ivr'), [
      ['challenge_result', 'Challenge', c.challenge_result
        ? `${c.challenge_result} (key ${str(c.challenge_digit) || '?'}, ${str(c.challenge_tries)} tr${c.challenge_tries === 1 ? 'y' : 'ies'})`
        : ''],
      ['digits', 'Digits', c.digits],
      ['department', 'Department', c.department],
      ['dialled', 'Dialled', c.dialled],
      ['dial_status', 'Dial status', c.dial_status],
      ['status', 'Status', c.status],
      ['duration_s', 'Duration', fmtDuration(c.duration_s)],
    ]);
    fieldList($('trace-call'), [
      ['ref', 'Reference', c.ref],
      ['state', 'State', c.state],
      ['caller_raw', 'Caller ID as sent', c.caller_raw],
      ['to', 'To', c.to],
      ['started_ms', 'Started', fmtFull(c.started_ms)],
      ['ended_ms', 'Ended', fmtFull(c.ended_ms)],
      ['policy_version', 'Policy', c.policy_version],
      ['shadow', 'Shadow mode', c.shadow ? 'yes: recorded, not enforced' : 'no'],
    ]);
    const caller = str(c.caller);
    $('trace-block').disabled = !caller;
    $('trace-allow').disabled = !caller;
  }

  $('trace-close').addEventListener('click', () => traceDialog.close());
  traceDialog.addEventListener('close', () => {
    traceRef = null;
    traceCall = null;
    traceSeq++;
    for (const tr of log.rows.values()) tr.classList.remove('selected');
  });
  // A click on the backdrop closes the trace.
  traceDialog.addEventListener('click', (ev) => {
    if (ev.target === traceDialog) {
      const r = traceDialog.getBoundingClientRect();
      const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      if (!inside) traceDialog.close();
    }
  });
  $('trace-block').addEventListener('click', () => traceCall && openQuick('block', str(traceCall.caller)));
  $('trace-allow').addEventListener('click', () => traceCall && openQuick('allow', str(traceCall.caller)));

  /* ---------------------------------------------------------------- *
   * Adding list entries: the quick form (from a call) and the list view's
   * ---------------------------------------------------------------- */

  /*
   * Wires one entry form whose fields have ids `${p}-kind`, `${p}-entry`,
   * `${p}-prefix`, `${p}-note`, `${p}-expires`. `done(entry)` runs after
   * the server took it.
   */
  function entryForm(p, done) {
    const f = {
      form: $(`${p}-kind`).form,
      kind: $(`${p}-kind`),
      entry: $(`${p}-entry`),
      prefix: $(`${p}-prefix`),
      note: $(`${p}-note`),
      expires: $(`${p}-expires`),
      preview: $(`${p}-preview`),
      error: $(`${p}-error`),
      number: '', // the caller the form was opened for
      trimmed: '', // the prefix suggested for it
    };

    f.value = () => {
      let e = f.entry.value.trim();
      if (f.prefix.checked && e) e = `${e.replace(/\*+$/, '')}*`;
      return e;
    };

    f.updatePreview = () => {
      const e = f.value();
      const kind = f.kind.value;
      if (!e) {
        f.preview.textContent = '';
        return;
      }
      f.preview.textContent = e.endsWith('*')
        ? `Will ${kind} every number starting with ${e.slice(0, -1)}.`
        : `Will ${kind} ${e} only.`;
    };

    f.prefix.addEventListener('change', () => {
      const cur = f.entry.value.trim();
      if (f.prefix.checked && f.number && cur === f.number && /^\d{8,}$/.test(cur)) {
        // Suggest the number without its last four digits.
        f.trimmed = cur.slice(0, -4);
        f.entry.value = f.trimmed;
      } else if (!f.prefix.checked && f.trimmed && cur === f.trimmed) {
        f.entry.value = f.number;
        f.trimmed = '';
      }
      f.updatePreview();
    });
    for (const input of [f.entry, f.kind, f.expires]) {
      input.addEventListener('input', f.updatePreview);
      input.addEventListener('change', f.updatePreview);
    }

    f.reset = (kind, number) => {
      f.form.reset();
      f.kind.value = kind || 'block';
      f.number = number || '';
      f.trimmed = '';
      f.entry.value = f.number;
      setError(f.error, '');
      f.updatePreview();
    };

    f.form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const entry = f.value();
      if (!entry) {
        setError(f.error, 'Enter a number or a prefix.');
        return;
      }
      const body = { kind: f.kind.value, entry };
      const note = f.note.value.trim();
      if (note) body.note = note;
      const ttl = Number(f.expires.value);
      if (ttl > 0) body.expires_in_s = ttl;
      const submit = f.form.querySelector('button[type=submit]');
      submit.disabled = true;
      setError(f.error, '');
      try {
        const saved = await api('api/lists', { method: 'POST', body });
        done(saved && typeof saved === 'object' ? saved : body);
      } catch (e) {
        if (!(e instanceof AuthError)) setError(f.error, `Not added: ${e.message}`);
        else setError(f.error, 'Sign in, then add again.');
      } finally {
        submit.disabled = false;
      }
    });

    return f;
  }

  const quickDialog = $('quick');
  const quick = entryForm('qa', (saved) => {
    quickDialog.close();
    toast(`Added ${str(saved.entry)} to the ${str(saved.kind)} list${saved.expires_ms ? `, until ${fmtFull(saved.expires_ms)}` : ''}.`);
    lastLists = 0;
    loadLists().catch(() => {});
  });
  const listAdd = entryForm('la', (saved) => {
    toast(`Added ${str(saved.entry)} to the ${str(saved.kind)} list.`);
    listAdd.reset(listAdd.kind.value, '');
    loadLists().catch(() => {});
  });
  listAdd.reset('block', '');

  function openQuick(kind, number) {
    quick.reset(kind, number);
    $('quick-title').textContent = kind === 'allow' ? 'Allow a caller' : 'Block a caller';
    $('qa-submit').textContent = kind === 'allow' ? 'Allow' : 'Block';
    quick.kind.onchange = () => {
      $('qa-submit').textContent = quick.kind.value === 'allow' ? 'Allow' : 'Block';
    };
    quickDialog.showModal();
    $('qa-entry').focus();
  }

  $('qa-cancel').addEventListener('click', () => quickDialog.close());

  /* ---------------------------------------------------------------- *
   * List management
   * ---------------------------------------------------------------- */

  let lists = [];
  let lastLists = 0;
  let listsSeq = 0;

  async function loadLists() {
    const seq = ++listsSeq;
    lastLists = Date.now();
    let data;
    try {
      data = await api('api/lists');
    } catch (e) {
      if (seq === listsSeq && !(e instanceof AuthError)) setError($('lists-error'), `Could not load the lists: ${e.message}`);
      throw e;
    }
    if (seq !== listsSeq) return;
    setError($('lists-error'), '');
    lists = data && Array.isArray(data.entries) ? data.entries : [];
    renderLists();
  }

  function renderLists() {
    const kind = $('lf-kind').value;
    const text = $('lf-text').value.trim().toLowerCase().replace(/^\+/, '');
    const shown = lists.filter((e) => (!kind || e.kind === kind) &&
      (!text || str(e.entry).toLowerCase().includes(text) || str(e.note).toLowerCase().includes(text)));
    const body = $('lists-body');
    body.replaceChildren();
    for (const e of shown) {
      const k = str(e.kind);
      const entry = str(e.entry);
      const remove = el('button', {
        type: 'button',
        class: 'small danger',
        'data-testid': 'list-remove',
        'aria-label': `Remove ${entry} from the ${k} list`,
      }, 'Remove');
      remove.addEventListener('click', () => removeEntry(e, remove));
      body.append(
        el('tr', { 'data-testid': 'list-row', 'data-kind': k, 'data-entry': entry },
          el('td', { 'data-label': 'List' }, el('span', { class: `badge decision-${k === 'allow' ? 'allow' : 'block'}` }, k)),
          el('td', { 'data-label': 'Entry', class: 'mono' }, entry),
          el('td', { 'data-label': 'Note' }, str(e.note)),
          el('td', { 'data-label': 'Source', class: 'muted' }, str(e.source)),
          el('td', { 'data-label': 'Added' }, el('time', { title: fmtFull(e.created_ms) }, fmtWhen(e.created_ms))),
          el('td', { 'data-label': 'Expires' }, isNum(e.expires_ms) && e.expires_ms > 0
            ? el('time', { title: fmtFull(e.expires_ms) }, fmtAhead(e.expires_ms))
            : 'never'),
          el('td', { class: 'c-actions' }, remove)),
      );
    }
    show($('lists-empty'), shown.length === 0);
    $('lists-count').textContent = lists.length
      ? `${shown.length === lists.length ? '' : `${shown.length} of `}${lists.length} entr${lists.length === 1 ? 'y' : 'ies'}`
      : '';
  }

  async function removeEntry(e, button) {
    button.disabled = true;
    const kind = str(e.kind);
    const entry = str(e.entry);
    try {
      await api(entryPath(kind, entry), { method: 'DELETE' });
      toast(`Removed ${entry} from the ${kind} list.`, {
        label: 'Undo',
        run: () => {
          const body = { kind, entry };
          if (e.note) body.note = str(e.note);
          if (isNum(e.expires_ms) && e.expires_ms > 0) body.expires_in_s = Math.max(1, Math.round((e.expires_ms - Date.now()) / 1000));
          api('api/lists', { method: 'POST', body })
            .then(() => toast(`Put ${entry} back on the ${kind} list.`))
            .catch((err) => toast(`Could not put it back: ${err.message}`))
            .finally(() => loadLists().catch(() => {}));
        },
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) toast(`${entry} was no longer on the ${kind} list.`);
      else if (!(err instanceof AuthError)) toast(`Not removed: ${err.message}`);
      button.disabled = false;
    }
    loadLists().catch(() => {});
  }

  $('lf-kind').addEventListener('change', renderLists);
  $('lf-text').addEventListener('input', renderLists);

  /* ---------------------------------------------------------------- *
   * Polling
   * ---------------------------------------------------------------- */

  let pollTimer = 0;
  let polling = false;
  let pollAgain = false;

  function pollNow() {
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(pollTimer);
    poll();
  }

  async function poll() {
    polling = true;
    try {
      if (authPending || document.hidden) return;
      const jobs = [];
      if (!$('view-calls').hidden) jobs.push(loadCalls(), loadStats());
      if (!$('view-lists').hidden && Date.now() - lastLists >= LISTS_EVERY_MS) jobs.push(loadLists());
      if (traceRef && (!traceCall || traceCall.state !== 'ended')) jobs.push(loadTrace());
      const results = await Promise.allSettled(jobs);
      const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
      // A 4xx (a filter the server refused, a call gone) is shown where it
      // happened; the status line is about reaching the server.
      const down = failed.find((e) => !(e instanceof ApiError) || e.status === 0 || e.status >= 500);
      if (failed.some((e) => e instanceof AuthError)) setStatus('Sign in needed', 'warn');
      else if (down) setStatus(`Offline: ${down.message}`, 'error');
      else setStatus(`Live · ${clockNow()}`, 'ok');
    } finally {
      polling = false;
      clearTimeout(pollTimer);
      if (pollAgain) {
        pollAgain = false;
        pollTimer = setTimeout(poll, 0);
      } else {
        pollTimer = setTimeout(poll, POLL_MS);
      }
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) pollNow();
  });

  setView(location.hash === '#lists' ? 'lists' : 'calls');
})();
