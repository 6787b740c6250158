// The live tail page that `logsd aggregator` serves at / (routes.ts): plain DOM, no framework,
// talking only to the aggregator's own query API (relative URLs, so it also works under a
// reverse proxy's path prefix). The state is in the address, so a link can be shared:
//   ?service=nginx&grep=error&host=h1&n=500&max=5000
// n = lines loaded at start and per "older"; max = lines kept in the page.
//
// Speed: records are parsed as they stream in (fetch + ReadableStream on /v1/logs?follow=1) but
// reach the DOM in one batch every 100 ms, and the page keeps at most `max` lines, so 1,000
// lines/s costs about ten small DOM updates a second. Every log text is set with textContent:
// a line is shown, never parsed as HTML.

const COLOURS = 12; // .c0 … .c11 in app.css (page.ts)
const FLUSH_MS = 100;

const $ = (id) => document.getElementById(id);
const logEl = $('log');
const statusEl = $('status');
const grepEl = $('grep');
const hostEl = $('host');
const pauseEl = $('pause');
const olderEl = $('older');

function int(v, dflt, min, max) {
  const n = Number(v);
  return v !== null && Number.isInteger(n) && n >= min && n <= max ? n : dflt;
}

function readState() {
  const p = new URLSearchParams(location.search);
  const max = int(p.get('max'), 5000, 100, 200_000);
  return {
    service: p.get('service') ?? '',
    grep: p.get('grep') ?? '',
    host: p.get('host') ?? '',
    n: Math.min(max, int(p.get('n'), 500, 1, 100_000)),
    max,
  };
}

let state = readState();
let gen = 0; // bumped on every restart; a stream of an older generation stops itself
let ctrl = new AbortController();
let pending = []; // records received but not yet in the DOM
let skipped = 0; // records dropped from `pending` while held (beyond `max`)
let paused = false; // the pause button
let stick = true; // the view is at the bottom, so new lines scroll into view
let timer = 0;
let lastTs = -Infinity; // newest record seen, for resuming after a lost connection
let lastKeys = new Set(); // keys of the records at lastTs
let resumeDedup = null; // while resuming: keys at lastTs that are already shown
let received = 0;
let rate = 0;
let live = false;
const hosts = new Set();

/** A stable colour per container, the same hash as the `logs` CLI. */
function colour(key) {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % COLOURS;
}

const key = (ts, id, log) => `${ts}|${id}|${log}`;

function setStatus(text, error = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', error);
}

function showStatus() {
  if (!state.service) return setStatus('');
  const held = paused ? 'paused' : !stick ? 'scrolled back' : '';
  const rows = logEl.childElementCount.toLocaleString();
  const waiting = pending.length + skipped;
  if (held) setStatus(`${held} · ${waiting.toLocaleString()} new · ${rows} lines`);
  else if (live) setStatus(`live · ${rate.toLocaleString()} lines/s · ${rows} lines`);
  pauseEl.textContent = paused ? 'resume' : !stick ? 'follow' : 'pause';
  pauseEl.setAttribute('aria-pressed', String(paused));
}

function matcher() {
  if (!state.grep) return null;
  try {
    return new RegExp(state.grep, 'g');
  } catch {
    return null;
  }
}
let mark = matcher();

/** Fills `el` with `text`, wrapping the filter's matches in <mark> (text nodes only). */
function fill(el, text) {
  if (!mark) {
    el.textContent = text;
    return;
  }
  mark.lastIndex = 0;
  let at = 0;
  for (let m = mark.exec(text); m; m = mark.exec(text)) {
    if (m[0] === '') {
      mark.lastIndex++;
      continue;
    }
    if (m.index > at) el.append(text.slice(at, m.index));
    const b = document.createElement('mark');
    b.textContent = m[0];
    el.append(b);
    at = m.index + m[0].length;
  }
  if (at < text.length) el.append(text.slice(at));
}

const pad = (n, w = 2) => String(n).padStart(w, '0');
function clock(ts) {
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** One line: "<time> <container>@<host> <log>", three elements (cheap at 1,000 lines/s). */
function row(l) {
  const d = document.createElement('div');
  d.className = l.stream === 'stderr' ? 'l stderr' : 'l';
  d.dataset.ts = String(l.ts);
  d.dataset.id = l.container_id;
  d.dataset.host = l.host;
  d.title = l.time;
  const who = l.container || l.container_id.slice(0, 12);
  const c = document.createElement('span');
  c.className = `c c${colour(`${who}@${l.host}`)}`;
  c.textContent = who;
  const m = document.createElement('span');
  m.className = 'm';
  fill(m, l.log);
  d.append(`${clock(l.ts)} `, c, `@${l.host} `, m);
  return d;
}

function gap(text) {
  const d = document.createElement('div');
  d.className = 'gap';
  d.textContent = text;
  return d;
}

const rowKey = (r) => key(r.dataset.ts, r.dataset.id, r.querySelector('.m').textContent);

function addHost(h) {
  if (!h || hosts.has(h)) return;
  hosts.add(h);
  const o = document.createElement('option');
  o.value = h;
  o.textContent = h;
  const after = [...hostEl.options].slice(1).find((x) => x.value > h);
  hostEl.insertBefore(o, after ?? null);
}

function take(l) {
  if (resumeDedup && l.ts === lastTs && resumeDedup.has(key(l.ts, l.container_id, l.log))) return;
  if (l.ts > lastTs) {
    lastTs = l.ts;
    lastKeys = new Set();
  }
  if (l.ts === lastTs) lastKeys.add(key(l.ts, l.container_id, l.log));
  received++;
  addHost(l.host);
  pending.push(l);
  if (pending.length > state.max) {
    const drop = pending.length - state.max;
    pending.splice(0, drop);
    skipped += drop;
  }
}

function schedule() {
  if (!timer) timer = setTimeout(flush, FLUSH_MS);
}

/** Moves pending records into the DOM in one batch and drops the oldest rows beyond `max`. */
function flush() {
  timer = 0;
  if (paused || !stick || pending.length === 0) return showStatus();
  const frag = document.createDocumentFragment();
  if (skipped) frag.append(gap(`… ${skipped.toLocaleString()} lines not shown while held`));
  skipped = 0;
  for (const l of pending) frag.append(row(l));
  pending = [];
  logEl.append(frag);
  const extra = logEl.childElementCount - state.max;
  if (extra > 0) {
    const r = document.createRange();
    r.setStartBefore(logEl.firstElementChild);
    r.setEndAfter(logEl.children[extra - 1]);
    r.deleteContents();
  }
  logEl.scrollTop = logEl.scrollHeight;
  showStatus();
}

function query() {
  const q = new URLSearchParams({ service: state.service });
  if (state.host) q.set('host', state.host);
  if (state.grep) q.set('grep', state.grep);
  return q;
}

async function failure(res) {
  const text = (await res.text()).trim();
  if (res.status === 401) return `${text} — open this page once as /?token=<token>`;
  return text || `HTTP ${res.status}`;
}

/** Streams /v1/logs?follow=1 into `pending` until the generation changes or the stream ends. */
async function connect(my, extra) {
  const q = query();
  q.set('follow', '1');
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  let res;
  try {
    res = await fetch(`v1/logs?${q}`, { signal: ctrl.signal });
  } catch {
    if (my === gen) retry(my);
    return;
  }
  if (my !== gen) return;
  if (!res.ok) {
    live = false;
    setStatus(await failure(res), true);
    return;
  }
  live = true;
  showStatus();
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let rest = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || my !== gen) break;
      const parts = (rest + dec.decode(value, { stream: true })).split('\n');
      rest = parts.pop();
      for (const p of parts) if (p) take(JSON.parse(p));
      resumeDedup = null;
      schedule();
    }
  } catch {
    /* aborted or the connection broke: the generation check below tells which */
  }
  if (my === gen) retry(my);
}

function retry(my) {
  live = false;
  setStatus('connection lost; reconnecting…', true);
  setTimeout(() => {
    if (my !== gen) return;
    if (lastTs === -Infinity) return void connect(my, { limit: String(state.n) });
    resumeDedup = lastKeys;
    connect(my, { since: String(lastTs) });
  }, 2000);
}

function start() {
  gen++;
  ctrl.abort();
  ctrl = new AbortController();
  clearTimeout(timer);
  timer = 0;
  pending = [];
  skipped = 0;
  lastTs = -Infinity;
  lastKeys = new Set();
  resumeDedup = null;
  live = false;
  stick = true;
  logEl.replaceChildren();
  mark = matcher();
  grepEl.value = state.grep;
  if (state.host) addHost(state.host);
  hostEl.value = state.host;
  $('title').textContent = state.service || 'pick a service';
  document.title = state.service ? `${state.service} · Flotilla logs` : 'Flotilla logs';
  for (const tr of document.querySelectorAll('#services tbody tr'))
    tr.classList.toggle('current', tr.dataset.service === state.service);
  olderEl.disabled = !state.service;
  if (!state.service) return setStatus('');
  setStatus('connecting…');
  void connect(gen, { limit: String(state.n) });
}

function syncUrl(push) {
  const p = new URLSearchParams();
  if (state.service) p.set('service', state.service);
  if (state.grep) p.set('grep', state.grep);
  if (state.host) p.set('host', state.host);
  const now = new URLSearchParams(location.search);
  for (const k of ['n', 'max']) if (now.has(k)) p.set(k, now.get(k));
  const url = p.size ? `?${p}` : location.pathname;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

/** Loads up to n records older than the first one shown (the API's `until`) above it. */
async function older() {
  const first = logEl.querySelector('.l');
  if (!state.service || !first) return;
  const my = gen;
  const ts = Number(first.dataset.ts);
  const known = new Set();
  for (let r = first; r && r.dataset.ts === first.dataset.ts; r = r.nextElementSibling)
    known.add(rowKey(r));
  const q = query();
  q.set('until', String(ts));
  q.set('limit', String(state.n + known.size));
  olderEl.disabled = true;
  try {
    const res = await fetch(`v1/logs?${q}`, { signal: ctrl.signal });
    if (my !== gen) return;
    if (!res.ok) return setStatus(await failure(res), true);
    const lines = (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((p) => JSON.parse(p))
      .filter((l) => !(l.ts === ts && known.has(key(l.ts, l.container_id, l.log))));
    if (my !== gen) return;
    if (lines.length === 0) return setStatus('no older lines');
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      addHost(l.host);
      frag.append(row(l));
    }
    const before = logEl.scrollHeight;
    logEl.prepend(frag);
    logEl.scrollTop = Math.max(0, logEl.scrollHeight - before - logEl.clientHeight / 2);
    stick = false;
    showStatus();
  } catch {
    /* aborted by a restart */
  } finally {
    if (my === gen) olderEl.disabled = false;
  }
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(ms).toISOString().slice(0, 10);
}

async function loadServices() {
  const note = $('services-status');
  let services;
  try {
    const res = await fetch('v1/services');
    if (!res.ok) {
      note.textContent = await failure(res);
      return;
    }
    services = (await res.json()).services;
  } catch {
    note.textContent = 'aggregator unreachable';
    return;
  }
  note.textContent = services.length ? '' : 'no logs stored yet';
  const body = document.querySelector('#services tbody');
  const rows = services
    .sort((a, b) => a.service.localeCompare(b.service))
    .map((s) => {
      const tr = document.createElement('tr');
      tr.dataset.service = s.service;
      if (s.service === state.service) tr.className = 'current';
      const name = document.createElement('td');
      const a = document.createElement('a');
      a.href = `?service=${encodeURIComponent(s.service)}`;
      a.textContent = s.service;
      name.append(a);
      const count = document.createElement('td');
      count.className = 'num';
      count.textContent = s.count.toLocaleString();
      const seen = document.createElement('td');
      seen.textContent = ago(s.lastSeen);
      seen.title = new Date(s.lastSeen).toISOString();
      tr.append(name, count, seen);
      return tr;
    });
  body.replaceChildren(...rows);
}

document.querySelector('#services tbody').addEventListener('click', (e) => {
  const tr = e.target.closest('tr');
  if (!tr) return;
  e.preventDefault();
  if (tr.dataset.service === state.service) return;
  state = { ...state, service: tr.dataset.service, host: '' };
  syncUrl(true);
  start();
});

let grepTimer = 0;
grepEl.addEventListener('input', () => {
  clearTimeout(grepTimer);
  grepTimer = setTimeout(() => {
    const v = grepEl.value;
    try {
      new RegExp(v);
    } catch (err) {
      grepEl.classList.add('bad');
      setStatus(`filter: ${err.message}`, true);
      return;
    }
    grepEl.classList.remove('bad');
    if (v === state.grep) return;
    state = { ...state, grep: v };
    syncUrl(false);
    start();
  }, 300);
});

hostEl.addEventListener('change', () => {
  state = { ...state, host: hostEl.value };
  syncUrl(false);
  start();
});

pauseEl.addEventListener('click', () => {
  if (!paused && !stick) {
    stick = true; // "follow": back to the newest lines
  } else paused = !paused;
  if (!paused) flush();
  showStatus();
});

olderEl.addEventListener('click', () => void older());

logEl.addEventListener('scroll', () => {
  const was = stick;
  stick = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 24;
  if (stick && !was) flush();
  else if (was !== stick) showStatus();
});

$('toolbar').addEventListener('submit', (e) => e.preventDefault());

window.addEventListener('popstate', () => {
  state = readState();
  start();
});

setInterval(() => {
  rate = received;
  received = 0;
  if (live) showStatus();
}, 1000);
setInterval(() => void loadServices(), 5000);
void loadServices();
start();
