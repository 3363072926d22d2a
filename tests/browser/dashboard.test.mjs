// End-to-end test of the admin dashboard: the real server (VS_BIN) on the
// score simulator, calls placed over its webhook, and the dashboard driven
// in headless Chromium through playwright-core. Prints TAP on stdout, one
// line per check; exits 1 when any check failed.
//
//   VS_BIN=build/voice-and-score node dashboard.test.mjs
//
// Environment: VS_BIN (required), CHROMIUM (default /usr/bin/chromium),
// VS_TEST_KEEP=1 keeps the temporary directory.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, 'artifacts');
const VS_BIN = process.env.VS_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'test-token';
const TOTAL_TIMEOUT_MS = 180_000;
const UI_TIMEOUT_MS = 10_000;

const ALLOWED = '15555550101'; // scores 101: the menu
const CHALLENGED = '15555550450'; // scores 450: a challenge
const BLOCKED = '15555550999'; // scores 999: blocked
const MENU_ONLY = '15555550123'; // scores 123: left at the menu
const HOSTILE = '<img src=x onerror="window.__xss=1">'; // a caller ID as markup

/* ------------------------------------------------------------------ *
 * TAP
 * ------------------------------------------------------------------ */

const checks = [];
function check(name, fn, { fatal = false } = {}) {
  checks.push({ name, fn, fatal });
}

function diag(text) {
  for (const line of String(text).split('\n')) process.stdout.write(`# ${line}\n`);
}

class CheckError extends Error {}
function assert(cond, message) {
  if (!cond) throw new CheckError(message);
}
function assertEq(actual, expected, what) {
  if (actual !== expected)
    throw new CheckError(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Retries `fn` until it returns a truthy value or `ms` pass. */
async function eventually(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new CheckError(`${what}${last ? `: ${last.message}` : ''}`);
    await sleep(200);
  }
}

/* ------------------------------------------------------------------ *
 * The server under test
 * ------------------------------------------------------------------ */

const ctx = {
  tmp: null,
  server: null,
  serverExit: null,
  stderr: [],
  webhook: null, // http://127.0.0.1:PORT/telesign/voice
  admin: null, // http://127.0.0.1:PORT/
  browser: null,
  page: null,
  refs: {}, // name -> reference_id
  blockAnswer: null, // the webhook's answer to a blocked caller
  menuAnswer: null, // and to an allowed one
  pageErrors: [],
};

let refCount = 0;
const newRef = (tag) => `BT${Date.now().toString(36).toUpperCase()}${++refCount}${tag}`;

function writeConfig(dir) {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `# written by tests/browser/dashboard.test.mjs
server:
  listen: 127.0.0.1:0
telesign:
  provider: simulator
admin:
  listen: 127.0.0.1:0
  token: "${TOKEN}"
screening:
  challenge_at: 400
  block_at: 600
menu:
  options:
    - digit: 1
      name: Sales
      dial: 15555550101
    - digit: 2
      name: Support
      dial: 15555550102
    - digit: 3
      name: Billing
      dial: 15555550103
store:
  path: ${join(dir, 'vs.db')}
log:
  level: info
`);
  return file;
}

function startServer(config) {
  return new Promise((resolve, reject) => {
    const srv = spawn(VS_BIN, ['serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    ctx.server = srv;
    ctx.serverExit = new Promise((r) => srv.on('exit', (code, signal) => r({ code, signal })));
    let buf = '';
    const timer = setTimeout(() => reject(new CheckError('no "listening" and "admin listening" log lines within 15 s')), 15_000);
    srv.on('error', (e) => {
      clearTimeout(timer);
      reject(new CheckError(`cannot run ${VS_BIN}: ${e.message}`));
    });
    srv.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new CheckError(`the server exited at start (code ${code}, signal ${signal})`));
    });
    srv.stderr.setEncoding('utf8');
    srv.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        ctx.stderr.push(line);
        if (ctx.stderr.length > 2000) ctx.stderr.shift();
        const url = (line.match(/\burl=(\S+)/) || [])[1];
        if (/msg="listening"/.test(line) && url) ctx.webhook = url;
        if (/msg="admin listening"/.test(line) && url) ctx.admin = url;
        if (ctx.webhook && ctx.admin) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
}

/* One TeleSign event to the webhook; the parsed answer. */
async function event(name, ref, data) {
  const res = await fetch(ctx.webhook, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ reference_id: ref, event: name, data }),
  });
  const text = await res.text();
  assertEq(res.status, 200, `${name} ${ref}: HTTP status (answer ${text})`);
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new CheckError(`${name} ${ref}: the answer is not JSON: ${text}`);
  }
}

const incoming = (ref, from) => event('incoming_call', ref, { from, to: '+15555559999' });
const pressed = (ref, digits) => event('speak_completed', ref, { status: 'speak_successful', collected_digits: digits });
const completed = (ref) => event('call_completed', ref, { duration: 42, status: 'hangup', direction: 'inbound', from: '', to: '15555559999' });

const isMenu = (a) => a && a.method === 'speak' && a.params && a.params.collect_digits &&
  /press 1/.test(a.params.tts && a.params.tts.message);
const isBlock = (a) => a && (a.method === 'hangup' ||
  ((a.method === 'speak' || a.method === 'play') && !(a.params && a.params.collect_digits)));

/* The admin API, with or without the token. */
async function adminApi(path, { token = TOKEN, method = 'GET', body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(new URL(path, ctx.admin), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, text, json };
}

/* ------------------------------------------------------------------ *
 * Browser helpers
 * ------------------------------------------------------------------ */

const row = (ref) => `tr[data-testid="call-row"][data-ref="${ref}"]`;

async function signIn(page) {
  await page.goto(ctx.admin);
  await page.locator('#token-dialog[open]').waitFor({ timeout: UI_TIMEOUT_MS });
  await page.getByLabel('Token', { exact: true }).fill(TOKEN);
  await page.getByTestId('token-submit').click();
  await page.locator('#token-dialog[open]').waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
}

/* ------------------------------------------------------------------ *
 * The checks
 * ------------------------------------------------------------------ */

check('the server starts with the admin listener and logs both URLs', async () => {
  assert(VS_BIN, 'VS_BIN is not set');
  ctx.tmp = mkdtempSync(join(tmpdir(), 'vs-browser-'));
  await startServer(writeConfig(ctx.tmp));
  assert(/^http:\/\/127\.0\.0\.1:\d+\/telesign\/voice$/.test(ctx.webhook), `webhook url ${ctx.webhook}`);
  assert(/^http:\/\/127\.0\.0\.1:\d+\/$/.test(ctx.admin), `admin url ${ctx.admin}`);
}, { fatal: true });

check('calls placed over the webhook get the menu, a challenge and the block message', async () => {
  // An allowed caller who picks Sales and is put through.
  let r = (ctx.refs.allowed = newRef('A'));
  ctx.menuAnswer = await incoming(r, `+${ALLOWED}`);
  assert(isMenu(ctx.menuAnswer), `allowed caller: expected the menu, got ${JSON.stringify(ctx.menuAnswer)}`);
  let a = await pressed(r, '1');
  assertEq(a.method, 'dial', 'allowed caller after pressing 1');
  a = await event('dial_completed', r, { status: 'answered' });
  assertEq(a.method, 'hangup', 'after the dial was answered');
  await completed(r);
  await sleep(20);

  // A blocked caller.
  r = ctx.refs.blocked = newRef('B');
  ctx.blockAnswer = await incoming(r, `+${BLOCKED}`);
  assert(isBlock(ctx.blockAnswer), `blocked caller: expected the block message, got ${JSON.stringify(ctx.blockAnswer)}`);
  if (ctx.blockAnswer.method !== 'hangup') await event('speak_completed', r, { status: 'speak_successful' });
  await completed(r);
  await sleep(20);

  // A challenged caller who keys the digit asked for, then Support.
  r = ctx.refs.challenged = newRef('C');
  a = await incoming(r, `+${CHALLENGED}`);
  const asked = a.params && a.params.tts && /press (\d)/.exec(a.params.tts.message);
  assert(a.method === 'speak' && asked, `challenged caller: expected "press N", got ${JSON.stringify(a)}`);
  a = await pressed(r, asked[1]);
  assert(isMenu(a), `after solving the challenge: expected the menu, got ${JSON.stringify(a)}`);
  a = await pressed(r, '2');
  assertEq(a.method, 'dial', 'challenged caller after pressing 2');
  await event('dial_completed', r, { status: 'answered' });
  await completed(r);
  await sleep(20);

  // A caller still at the menu, and one whose caller ID is markup.
  r = ctx.refs.menu = newRef('M');
  assert(isMenu(await incoming(r, `+${MENU_ONLY}`)), 'the caller left at the menu');
  await sleep(20);
  r = ctx.refs.hostile = newRef('X');
  a = await incoming(r, HOSTILE);
  assert(a && a.jsonrpc === '2.0', `the hostile caller ID got no action: ${JSON.stringify(a)}`);

  // The store writes after answering: wait until the API has them all.
  await eventually(async () => {
    const res = await adminApi('api/calls?limit=50');
    const have = new Set((res.json && res.json.calls || []).map((c) => c.ref));
    return Object.values(ctx.refs).every((x) => have.has(x));
  }, 10_000, 'the API did not list every placed call');
});

check('the API answers 401 with WWW-Authenticate: Bearer without the token, and with a wrong one', async () => {
  for (const token of ['', 'wrong-token']) {
    const res = await adminApi('api/calls', { token });
    assertEq(res.status, 401, `GET /api/calls with token "${token}"`);
    assert(/^Bearer\b/i.test(res.headers.get('www-authenticate') || ''), `WWW-Authenticate is "${res.headers.get('www-authenticate')}"`);
  }
  const ok = await adminApi('api/calls');
  assertEq(ok.status, 200, 'GET /api/calls with the token');
  assert(/^application\/json/.test(ok.headers.get('content-type') || ''), `Content-Type ${ok.headers.get('content-type')}`);
});

check('the dashboard files are served without a token and load nothing from outside', async () => {
  for (const [path, type] of [['', 'text/html'], ['app.js', 'javascript'], ['style.css', 'text/css']]) {
    const res = await adminApi(path, { token: '' });
    assertEq(res.status, 200, `GET /${path}`);
    assert((res.headers.get('content-type') || '').includes(type), `/${path} Content-Type ${res.headers.get('content-type')}`);
    const external = res.text.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '').match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    assert(!external, `/${path} refers to ${external && external[0]}`);
  }
});

check('the dashboard asks for the token, then shows the call log', async () => {
  ctx.browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await ctx.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = (ctx.page = await context.newPage());
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (e) => ctx.pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Failed requests (the 401 that makes the dashboard ask for the token,
    // the 400 of a refused entry) are logged by Chromium itself: not errors
    // of the page's code.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) ctx.pageErrors.push(`console: ${m.text()}`);
  });
  await signIn(page);
  await page.locator(row(ctx.refs.allowed)).waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem('vs-admin-token'));
  assertEq(stored, TOKEN, 'the token in sessionStorage');
}, { fatal: true });

check('the log shows every call, newest first, with its decision, reason and score', async () => {
  const page = ctx.page;
  const expect = [
    [ctx.refs.allowed, 'allow', ALLOWED, /^score:101</, '101'],
    [ctx.refs.blocked, 'block', BLOCKED, /^score:999>=/, '999'],
    [ctx.refs.challenged, 'challenge', CHALLENGED, /^score:450>=/, '450'],
    [ctx.refs.menu, 'allow', MENU_ONLY, /^score:123</, '123'],
  ];
  for (const [ref, decision, caller, reason, score] of expect) {
    const r = page.locator(row(ref));
    assertEq(await r.getAttribute('data-decision'), decision, `${ref} data-decision`);
    assertEq(await r.getAttribute('data-caller'), caller, `${ref} data-caller`);
    assertEq((await r.getByTestId('decision-badge').textContent()).trim(), decision, `${ref} badge`);
    const why = (await r.getByTestId('call-reason').textContent()).trim();
    assert(reason.test(why), `${ref} reason "${why}"`);
    assertEq((await r.getByTestId('call-score').textContent()).trim(), score, `${ref} score`);
  }
  assertEq((await page.locator(row(ctx.refs.menu)).getByTestId('call-state').textContent()).trim(), 'menu', 'state of the call at the menu');
  const order = await page.locator('tr[data-testid="call-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.ref));
  const ours = order.filter((r) => Object.values(ctx.refs).includes(r));
  const placed = [ctx.refs.allowed, ctx.refs.blocked, ctx.refs.challenged, ctx.refs.menu, ctx.refs.hostile];
  assertEq(ours.join(' '), placed.reverse().join(' '), 'row order');
});

check('a caller ID made of markup is shown as text, not run', async () => {
  const page = ctx.page;
  const r = page.locator(row(ctx.refs.hostile));
  await r.waitFor();
  assertEq(await page.locator('#calls-body img').count(), 0, 'img elements in the log');
  const text = await r.textContent();
  assert(text.includes(HOSTILE), `the row does not show the raw caller ID as text: ${text}`);
  assertEq(await page.evaluate(() => window.__xss), undefined, 'window.__xss');
});

check('the calls-per-hour chart draws stacked bars by decision', async () => {
  const page = ctx.page;
  const bars = page.locator('[data-testid="chart-hourly"] svg rect.bar');
  await eventually(async () => (await bars.count()) > 0, UI_TIMEOUT_MS, 'no bars in chart-hourly');
  const counts = await bars.evaluateAll((rs) => rs.map((r) => [r.dataset.decision, Number(r.dataset.count), Number(r.getAttribute('height'))]));
  const sum = (d) => counts.filter((c) => c[0] === d).reduce((a, c) => a + c[1], 0);
  assert(counts.every((c) => c[2] > 0), 'a bar of no height');
  assert(sum('allow') >= 2 && sum('block') >= 1 && sum('challenge') >= 2,
    `bar counts allow ${sum('allow')} challenge ${sum('challenge')} block ${sum('block')}`);
});

check('the score chart draws the distribution', async () => {
  const page = ctx.page;
  const bars = page.locator('[data-testid="chart-scores"] svg rect.bar');
  await eventually(async () => (await bars.count()) >= 3, UI_TIMEOUT_MS, 'fewer than 3 bars in chart-scores');
  const got = Object.fromEntries(await bars.evaluateAll((rs) => rs.map((r) => [r.dataset.from, Number(r.dataset.count)])));
  assertEq(got['100'], 2, 'calls scoring 100-199');
  assertEq(got['400'], 1, 'calls scoring 400-499');
  assertEq(got['900'], 1, 'calls scoring 900-1000');
});

check('clicking a call shows its decision trace and IVR path', async () => {
  const page = ctx.page;
  await page.locator(row(ctx.refs.allowed)).getByTestId('call-reason').click();
  const dialog = page.getByTestId('trace');
  await dialog.waitFor();
  await page.locator('[data-testid="trace-step"]').first().waitFor();
  assertEq((await page.getByTestId('trace-ref').textContent()).trim(), ctx.refs.allowed, 'trace ref');
  const steps = await page.locator('[data-testid="trace-step"]').evaluateAll((rs) => rs.map((r) => [r.dataset.step, r.dataset.decisive, r.classList.contains('decisive')]));
  assertEq(steps[0] && steps[0][0], 'normalise', 'first step');
  const decisive = steps.filter((s) => s[1] === 'true');
  assertEq(decisive.length, 1, `decisive steps in ${JSON.stringify(steps)}`);
  assertEq(decisive[0][0], 'score', 'the decisive step');
  assert(decisive[0][2], 'the decisive step is not highlighted');
  const field = async (name) => (await page.getByTestId(`field-${name}`).textContent()).trim();
  assertEq(await field('score'), '101', 'score');
  assertEq(await field('digits'), '1', 'digits');
  assertEq(await field('department'), 'Sales', 'department');
  assertEq(await field('dialled'), '15555550101', 'dialled');
  assertEq(await field('dial_status'), 'answered', 'dial_status');
  assertEq(await field('status'), 'hangup', 'status');
  assert((await field('duration_s')).startsWith('42'), `duration "${await field('duration_s')}"`);
  await page.getByTestId('trace-close').click();
  await dialog.waitFor({ state: 'hidden' });
});

check('the log filters by decision', async () => {
  const page = ctx.page;
  await page.getByTestId('filter-decision').selectOption('block');
  await eventually(async () => {
    const ds = await page.locator('tr[data-testid="call-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.decision));
    return ds.length >= 1 && ds.every((d) => d === 'block') && !ds.includes('allow');
  }, UI_TIMEOUT_MS, 'rows other than block under the block filter');
  await page.locator(row(ctx.refs.blocked)).waitFor();
  await page.getByTestId('filter-decision').selectOption('');
  await page.getByTestId('filter-caller').fill('+1 555 555 0450');
  await eventually(async () => {
    const cs = await page.locator('tr[data-testid="call-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.caller));
    return cs.length === 1 && cs[0] === CHALLENGED;
  }, UI_TIMEOUT_MS, 'the caller filter');
  await page.getByTestId('filter-reset').click();
  await page.locator(row(ctx.refs.allowed)).waitFor();
});

check(`blocking ${ALLOWED} from its row adds it to the block list`, async () => {
  const page = ctx.page;
  await page.locator(row(ctx.refs.allowed)).getByTestId('row-block').click();
  await page.getByTestId('quick-dialog').waitFor();
  assertEq(await page.getByTestId('qa-kind').inputValue(), 'block', 'the form\'s kind');
  assertEq(await page.getByTestId('qa-entry').inputValue(), ALLOWED, 'the form\'s entry');
  await page.getByTestId('qa-note').fill('browser test');
  await page.getByTestId('qa-expires').selectOption('86400');
  await page.getByTestId('qa-submit').click();
  await page.getByTestId('quick-dialog').waitFor({ state: 'hidden' });
  const res = await adminApi('api/lists');
  assertEq(res.status, 200, 'GET /api/lists');
  const e = (res.json.entries || []).find((x) => x.kind === 'block' && x.entry === ALLOWED);
  assert(e, `no block entry ${ALLOWED} in ${res.text}`);
  assertEq(e.note, 'browser test', 'the entry\'s note');
  const ahead = e.expires_ms - Date.now();
  assert(ahead > 23 * 3600e3 && ahead <= 24 * 3600e3 + 60e3, `expires_ms ${e.expires_ms} is not 24 h ahead`);
});

check(`a new call from ${ALLOWED} is now blocked`, async () => {
  const r = (ctx.refs.reblocked = newRef('R'));
  const a = await incoming(r, `+${ALLOWED}`);
  assert(!isMenu(a), `still got the menu: ${JSON.stringify(a)}`);
  assert(isBlock(a), `not a block answer: ${JSON.stringify(a)}`);
  assertEq(JSON.stringify(a), JSON.stringify(ctx.blockAnswer), 'the answer, against the blocked caller\'s');
  if (a.method !== 'hangup') await event('speak_completed', r, { status: 'speak_successful' });
  await completed(r);
  const newest = await eventually(async () => {
    const res = await adminApi(`api/calls?caller=${ALLOWED}`);
    const c = res.json && res.json.calls && res.json.calls[0];
    return c && c.ref === r ? c : null;
  }, 10_000, `GET /api/calls?caller=${ALLOWED} does not list the new call first`);
  assertEq(newest.decision, 'block', 'its decision');
  assert(/^blocklist:/.test(newest.reason), `its reason "${newest.reason}"`);
});

check('the dashboard log shows the new call as blocked by the list', async () => {
  const page = ctx.page;
  const r = page.locator(row(ctx.refs.reblocked));
  await r.waitFor();
  assertEq(await r.getAttribute('data-decision'), 'block', 'data-decision');
  const why = (await r.getByTestId('call-reason').textContent()).trim();
  assert(why.startsWith('blocklist:'), `reason "${why}"`);
  const first = await page.locator('tr[data-testid="call-row"]').first().getAttribute('data-ref');
  assertEq(first, ctx.refs.reblocked, 'the newest row');
});

check('screenshot of the dashboard (artifacts/dashboard.png)', async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // The toast of the block just made would cover a row.
  await ctx.page.evaluate(() => { document.getElementById('toast').hidden = true; });
  await ctx.page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
});

check('the list view shows the entry, and removing it takes it off the list', async () => {
  const page = ctx.page;
  await page.getByTestId('tab-lists').click();
  const entry = page.locator(`tr[data-testid="list-row"][data-kind="block"][data-entry="${ALLOWED}"]`);
  await entry.waitFor();
  assert((await entry.textContent()).includes('browser test'), 'the note is not shown');
  await entry.getByTestId('list-remove').click();
  await entry.waitFor({ state: 'detached' });
  const res = await adminApi('api/lists');
  assert(!(res.json.entries || []).some((x) => x.kind === 'block' && x.entry === ALLOWED), `still listed: ${res.text}`);
});

check('a prefix added from the list view can be removed (entry with *)', async () => {
  const page = ctx.page;
  await page.getByTestId('la-kind').selectOption('allow');
  await page.getByTestId('la-entry').fill('+1 555 444');
  await page.getByTestId('la-prefix').check();
  await page.getByTestId('la-note').fill('prefix test');
  await page.getByTestId('la-submit').click();
  const entry = page.locator('tr[data-testid="list-row"][data-kind="allow"][data-entry="1555444*"]');
  await entry.waitFor();
  const res = await adminApi('api/lists');
  assert((res.json.entries || []).some((x) => x.kind === 'allow' && x.entry === '1555444*'), `not in the API: ${res.text}`);
  await entry.getByTestId('list-remove').click();
  await entry.waitFor({ state: 'detached' });
  const after = await adminApi('api/lists');
  assert(!(after.json.entries || []).some((x) => x.entry === '1555444*'), `still listed: ${after.text}`);
});

check('a bad entry is refused with the server\'s reason in the form', async () => {
  const page = ctx.page;
  await page.getByTestId('la-prefix').uncheck();
  await page.getByTestId('la-entry').fill('not-a-number');
  await page.getByTestId('la-submit').click();
  const err = page.getByTestId('la-error');
  await err.waitFor();
  const text = (await err.textContent()).trim();
  assert(text.length > 'Not added: '.length, `error text "${text}"`);
});

check('on a 390 px phone screen the page is one column with no sideways scroll (artifacts/dashboard-phone.png)', async () => {
  const context = await ctx.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (e) => ctx.pageErrors.push(`phone pageerror: ${e.message}`));
  await signIn(page);
  await page.locator(row(ctx.refs.reblocked)).waitFor();
  await page.locator('[data-testid="chart-hourly"] svg rect.bar').first().waitFor();
  const layout = await page.evaluate(() => {
    const box = (id) => document.getElementById(id).getBoundingClientRect();
    const h = box('chart-hourly');
    const s = box('chart-scores');
    const btn = document.querySelector('tr[data-testid="call-row"] [data-testid="row-block"]').getBoundingClientRect();
    return {
      scrollWidth: document.documentElement.scrollWidth,
      stacked: s.top >= h.bottom,
      chartWidth: h.width,
      button: btn.height,
    };
  });
  assert(layout.scrollWidth <= 390, `the page is ${layout.scrollWidth} px wide`);
  assert(layout.stacked, 'the charts are side by side');
  assert(layout.chartWidth <= 390, `the chart is ${layout.chartWidth} px wide`);
  assert(layout.button >= 40, `the row's button is ${layout.button} px high`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
  await context.close();
});

check('the page raised no JavaScript errors', async () => {
  assert(ctx.pageErrors.length === 0, ctx.pageErrors.join('\n'));
});

check('the server stops cleanly on SIGTERM', async () => {
  if (ctx.browser) await ctx.browser.close();
  ctx.browser = null;
  ctx.server.kill('SIGTERM');
  const result = await Promise.race([ctx.serverExit, sleep(10_000).then(() => null)]);
  assert(result, 'still running 10 s after SIGTERM');
  assertEq(result.code, 0, `exit status (signal ${result.signal})`);
  ctx.server = null;
});

/* ------------------------------------------------------------------ *
 * Runner
 * ------------------------------------------------------------------ */

async function cleanup() {
  if (ctx.browser) await ctx.browser.close().catch(() => {});
  if (ctx.server && ctx.server.exitCode === null) {
    ctx.server.kill('SIGTERM');
    const done = await Promise.race([ctx.serverExit, sleep(5000).then(() => null)]);
    if (!done) ctx.server.kill('SIGKILL');
  }
  if (ctx.tmp && !process.env.VS_TEST_KEEP) rmSync(ctx.tmp, { recursive: true, force: true });
}

async function main() {
  const overall = setTimeout(async () => {
    diag(`the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
    diag(ctx.stderr.slice(-40).join('\n'));
    await cleanup();
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);

  process.stdout.write(`TAP version 13\n1..${checks.length}\n`);
  let failed = 0;
  let fatal = null;
  for (const [i, c] of checks.entries()) {
    const n = i + 1;
    if (fatal) {
      process.stdout.write(`not ok ${n} - ${c.name} # not run: "${fatal}" failed\n`);
      failed++;
      continue;
    }
    try {
      await c.fn();
      process.stdout.write(`ok ${n} - ${c.name}\n`);
    } catch (e) {
      failed++;
      process.stdout.write(`not ok ${n} - ${c.name}\n`);
      diag(e instanceof CheckError ? e.message : (e && e.stack) || String(e));
      if (c.fatal) fatal = c.name;
    }
  }
  if (failed) {
    diag('the server\'s last log lines:');
    diag(ctx.stderr.slice(-40).join('\n') || '(none)');
  }
  await cleanup();
  clearTimeout(overall);
  diag(`${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
