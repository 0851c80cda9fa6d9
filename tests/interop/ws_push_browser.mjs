// ws-push with a real browser: Debian's chromium, headless, driven by npm's playwright-core (no
// browser download: its executable path is Debian's). The test serves a page (tests/fixtures/
// ws_push_page, a client written from docs/push-protocol.md) over HTTP on a free loopback port; the
// page gets its token from the test's /session and shows each message in its DOM. Checked: a
// message posted to /push shows on the page; with a refused token the page shows 4001 and never
// the message; a page from an origin not in --allowed-origin cannot open the WebSocket (the
// browser sees the handshake fail); after the node shuts down (1001) the page reconnects and logs
// in again by itself, and gets what is sent after that (what was sent while it was away is lost:
// the protocol has no resume yet).
// Usage: node ws_push_browser.mjs --ws-push PATH/TO/ws-push   (PIPEKIT_CHROMIUM: another chromium)
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, finish, freePort, sleep, withTimeout } from './lib.mjs';

const started = Date.now();
const bin = process.argv[process.argv.indexOf('--ws-push') + 1];
const chromiumPath = process.env.PIPEKIT_CHROMIUM || '/usr/bin/chromium';
const pageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ws_push_page');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipekit-ws-push-browser-'));
const children = [];
let browserPid = null;
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
  // playwright starts chromium as its own process group: end all of it (renderers, zygote).
  if (browserPid) try { process.kill(-browserPid, 'SIGKILL'); } catch { /* already gone */ }
};
// Whatever way the script ends, the browser and the nodes it started end with it.
process.on('exit', killAll);
const exited = (p) => new Promise((resolve) => {
  if (p.exitCode !== null || p.signalCode !== null) resolve(p.exitCode ?? p.signalCode);
  else p.on('exit', (code, signal) => resolve(code ?? signal));
});
const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

// --- tokens (HS256 by node's HMAC) ----------------------------------------------------------
const secret = crypto.randomBytes(32).toString('base64');
fs.writeFileSync(path.join(dir, 'secret'), secret + '\n');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const hs256 = (claims, key = secret) => {
  const signing = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${signing}.${crypto.createHmac('sha256', key).update(signing).digest('base64url')}`;
};

// --- the page's HTTP server: the page, its client module, and /session ----------------------
// /session?s=NAME answers {url, token} from `sessions[NAME]`, as an app's backend would.
const sessions = {};
function pageServer() {
  const files = { '/': 'index.html', '/push_client.js': 'push_client.js' };
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/session') {
      const s = sessions[u.searchParams.get('s')];
      res.writeHead(s ? 200 : 404, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return res.end(JSON.stringify(s ? s() : { error: 'no such session' }));
    }
    const f = files[u.pathname];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[path.extname(f)], 'cache-control': 'no-store' });
    res.end(fs.readFileSync(path.join(pageDir, f)));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    server.origin = `http://127.0.0.1:${server.address().port}`;
    resolve(server);
  }));
}

// --- ws-push --------------------------------------------------------------------------------
async function startNode(ports, extra, name) {
  const logPath = path.join(dir, `${name}.log`);
  const log = fs.openSync(logPath, 'w');
  const p = spawn(bin, ['--jwt-secret-file', path.join(dir, 'secret'), '--listen', `127.0.0.1:${ports.ws}`,
    '--push-listen', `127.0.0.1:${ports.push}`, ...extra], { stdio: ['ignore', 'ignore', log] });
  fs.closeSync(log);
  children.push(p);
  const node = { p, url: `ws://127.0.0.1:${ports.ws}/ws`, api: `http://127.0.0.1:${ports.push}`, log: logPath };
  const end = Date.now() + 10000;
  while (Date.now() < end && p.exitCode === null) {
    try { if ((await fetch(node.api + '/healthz')).status === 200) return node; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`ws-push ${name} did not start: ${fs.readFileSync(logPath, 'utf8')}`);
}
const push = async (node, body) => {
  const r = await fetch(node.api + '/push', { method: 'POST', body });
  return (await r.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
const stats = async (node) => (await fetch(node.api + '/stats')).json();

// --- the page, as the test reads it ---------------------------------------------------------
const shown = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => ({ id: li.dataset.id, text: li.textContent })));
const events = (page) => page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
const closes = async (page) => (await events(page)).filter((e) => e.startsWith('close ')).map((e) => Number(e.slice(6)));
// Waits (in the page) until `fn(arg)` is true, at most ms; the failure names what was awaited.
const waitIn = (page, what, fn, arg, ms = 10000) =>
  page.waitForFunction(fn, arg, { timeout: ms, polling: 25 }).catch((e) => { throw new Error(`timed out: ${what} (${e.message.split('\n')[0]})`); });
const hasMessage = (id) => document.querySelector(`#messages li[data-id="${id}"]`) !== null;

let browserServer = null;
let browser = null;
try {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no chromium at ${chromiumPath}: install Debian's chromium (apt-get install chromium, or ` +
      'make -f Makefile.dist deps), or set PIPEKIT_CHROMIUM');
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed (make -f Makefile.dist deps-npm): ${e.message}`);
  }

  const page1 = await pageServer();  // the allowed origin
  const page2 = await pageServer();  // another origin (another port), not allowed
  const ports = { ws: await freePort(), push: await freePort() };
  const nodeArgs = ['--allowed-origin', page1.origin];
  let node = await startNode(ports, nodeArgs, 'node');
  const token = (user, ttl = 600) => () => ({ url: node.url, token: hs256({ sub: user, exp: now() + ttl }) });
  sessions.alice = token('alice');
  sessions.bad = () => ({ url: node.url, token: hs256({ sub: 'mallory', exp: now() + 600 }, crypto.randomBytes(32)) });
  sessions.eve = token('eve');

  // Chromium as root on a small CI machine: no sandbox, no GPU, /tmp rather than a small /dev/shm,
  // nothing in the background that reaches out.
  const t0 = Date.now();
  browserServer = await chromium.launchServer({
    executablePath: chromiumPath,
    headless: true,
    timeout: 60000,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-default-apps', '--disable-extensions', '--disable-sync', '--no-first-run',
      '--no-default-browser-check', '--mute-audio', '--metrics-recording-only', '--password-store=basic',
      '--use-mock-keychain', '--disable-features=Translate,MediaRouter,OptimizationHints'],
  });
  browserPid = browserServer.process().pid;
  browser = await chromium.connect(browserServer.wsEndpoint(), { timeout: 30000 });
  console.log(`chromium ${browser.version()} up in ${since(t0)}`);
  const context = await browser.newContext();
  const open = async (server, session, query = '') => {
    const page = await context.newPage();
    page.on('pageerror', (e) => check(`no script error on the ${session} page`, false, e.message));
    await page.goto(`${server.origin}/?s=${session}${query}`, { timeout: 15000 });
    return page;
  };

  // A logged-in page shows what /push sends its user, as text.
  const alice = await open(page1, 'alice', '&min_delay=3000');
  await waitIn(alice, 'the page logged in', () => document.getElementById('status').textContent === 'logged in');
  check('the page logged in as its user', (await alice.textContent('#user')) === 'alice');
  let r = await push(node, JSON.stringify({ user: 'alice', id: 'm1', data: { text: 'hello from /push' } }));
  check('/push delivered to the page', r[0]?.delivered === 1, JSON.stringify(r));
  await waitIn(alice, 'the page shows m1', hasMessage, 'm1');
  check('the page shows the message', JSON.stringify(await shown(alice)) === '[{"id":"m1","text":"{\\"text\\":\\"hello from /push\\"}"}]',
    JSON.stringify(await shown(alice)));
  await push(node, JSON.stringify({ user: 'alice', id: 'm2', data: '<img src=x onerror="document.title=1">' }));
  await waitIn(alice, 'the page shows m2', hasMessage, 'm2');
  check('markup in a message is shown as text', (await alice.$$('#messages img')).length === 0 && (await alice.title()) === 'ws-push');

  // A refused token: 4001 on the page, and never a message for the user it names.
  const bad = await open(page1, 'bad');
  await waitIn(bad, 'the refused page shows its close', () => document.querySelector('#log li[data-close]') !== null);
  check('a refused token: the page shows 4001', JSON.stringify(await closes(bad)) === '[4001]', JSON.stringify(await events(bad)));
  check('a refused token: the page says so and does not retry', (await bad.textContent('#status')) === 'closed: token refused' &&
    !(await events(bad)).some((e) => e.startsWith('retry')), JSON.stringify(await events(bad)));
  r = await push(node, '{"user":"mallory","id":"x1","data":"for mallory"}\n{"user":"alice","id":"m3","data":"after"}');
  check('the refused user is offline to /push', r[0]?.offline?.[0] === 'mallory', JSON.stringify(r));
  await waitIn(alice, 'the page shows m3', hasMessage, 'm3');  // sent after x1 on the same node
  check('the refused page never shows a message', (await shown(bad)).length === 0, JSON.stringify(await shown(bad)));

  // A page of another origin: the browser cannot open the WebSocket (403 on the handshake).
  const before = (await stats(node)).refused_connections;
  const foreign = await open(page2, 'eve');
  await waitIn(foreign, 'the foreign page sees its handshake fail', () => document.querySelector('#log li[data-close]') !== null);
  const fe = await events(foreign);
  check('another origin: the handshake fails in the browser (error, close 1006)',
    fe.includes('error') && (await closes(foreign))[0] === 1006 && !fe.includes('open') && !fe.includes('login_ok'), JSON.stringify(fe));
  check('another origin: refused by the node and logged', (await stats(node)).refused_connections > before &&
    fs.readFileSync(node.log, 'utf8').includes(`origin ${page2.origin} not allowed`));
  await foreign.evaluate(() => window.pushClient.stop());

  // The node shuts down (1001) and comes back on the same ports: the page reconnects with its
  // backoff, logs in again with a fresh token from its backend, and gets what is sent after.
  const gone = exited(node.p);
  node.p.kill('SIGTERM');
  await waitIn(alice, 'the page sees 1001', () => document.querySelector('#log li[data-close="1001"]') !== null);
  check('the node exits 0', (await withTimeout(gone, 10000, 'the node exit')) === 0);
  const afterClose = (await events(alice)).slice((await events(alice)).indexOf('close 1001'));
  check('after 1001 the page plans to reconnect', afterClose[1]?.startsWith('retry in '), JSON.stringify(afterClose));
  node = await startNode(ports, nodeArgs, 'node2');
  // Whether the page is back yet depends on its jittered delay: what it shows must be what the
  // node says it delivered.
  r = await push(node, '{"user":"alice","id":"away","data":"while away?"}');
  const deliveredAway = r[0]?.delivered === 1;
  console.log(`a message right after the restart: ${deliveredAway ? 'delivered (the page was back)' : 'offline (the page was away)'}`);
  await waitIn(alice, 'the page logged in again', (t) => [...document.querySelectorAll('#log li')].filter((li) => li.textContent === t).length === 2, 'login_ok', 40000);
  r = await push(node, '{"user":"alice","id":"m4","data":"after the reconnect"}');
  check('the page is reachable again', r[0]?.delivered === 1, JSON.stringify(r));
  await waitIn(alice, 'the page shows m4', hasMessage, 'm4');
  const ids = (await shown(alice)).map((m) => m.id).join();
  check('the page shows each message once, in order; one sent while away only if delivered',
    ids === (deliveredAway ? 'm1,m2,m3,away,m4' : 'm1,m2,m3,m4'), ids);
  check('no resume yet: a message sent while the page was away is lost',
    deliveredAway || !(await shown(alice)).some((m) => m.id === 'away'));
} catch (e) {
  check('no exception', false, e.stack);
} finally {
  // Chromium always ends: a polite close first, bounded, then the whole process group killed.
  const t = Date.now();
  if (browser) await withTimeout(browser.close(), 5000, 'browser.close').catch(() => {});
  if (browserServer) await withTimeout(browserServer.close(), 5000, 'browserServer.close').catch(() => {});
  killAll();
  if (browserPid) {
    const end = Date.now() + 5000;
    const alive = () => { try { process.kill(browserPid, 0); return true; } catch { return false; } };
    while (alive() && Date.now() < end) await sleep(20);
    check('chromium ended', !alive(), `pid ${browserPid}`);
  }
  console.log(`browser closed in ${since(t)}; whole test ${since(started)}`);
  fs.rmSync(dir, { recursive: true, force: true });
}
finish();
