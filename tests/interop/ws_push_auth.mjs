// ws-push --auth-url against a small real auth service written here (node:http) that accepts,
// refuses, is slow, is down, answers garbage or answers huge, and counts its requests (the cache,
// shared requests); and the heartbeat (--ping-interval, --pong-timeout, --idle-timeout) with npm's
// ws clients, one of which stops answering pings (autoPong: false).
// Usage: node ws_push_auth.mjs --ws-push PATH/TO/ws-push
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { check, finish, freePort, sleep, withTimeout } from './lib.mjs';

const bin = process.argv[process.argv.indexOf('--ws-push') + 1];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipekit-ws-push-auth-'));
const children = [];
const servers = [];
const exited = (p) => new Promise((resolve) => p.on('exit', (code, signal) => resolve(code ?? signal)));
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// --- the auth service -----------------------------------------------------------------------
// A token says how to answer: "ok:USER", "exp:USER:SECONDS", "slow:USER:MS", "deny" (401),
// "forbid" (403), "boom" (500), "garbage" (200, not JSON), "nouser" (200, no user), "ctl" (200, a
// user with a newline), "past" (200, exp a minute ago), "huge" (200, 1 MiB).
const svcSecret = crypto.randomBytes(16).toString('hex');
fs.writeFileSync(path.join(dir, 'svc-secret'), svcSecret + '\n');
const requests = new Map();  // token -> requests seen
const seen = [];             // { auth, type, body } of every request
const nowS = () => Math.floor(Date.now() / 1000);
function authHandler(req, res) {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], body, url: req.url, method: req.method });
    const json = (o, status = 200) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o));
    };
    let tok;
    try { tok = JSON.parse(body).token; } catch { return json({ error: 'bad request' }, 400); }
    requests.set(tok, (requests.get(tok) ?? 0) + 1);
    if (req.headers.authorization !== `Bearer ${svcSecret}`) return json({ error: 'who are you' }, 401);
    const [kind, a, b] = String(tok).split(':');
    switch (kind) {
      case 'ok': return json({ user: a });
      case 'exp': return json({ user: a, exp: nowS() + Number(b) });
      case 'slow': return setTimeout(() => json({ user: a }), Number(b));
      case 'deny': return json({ error: 'no' }, 401);
      case 'forbid': return json({}, 403);
      case 'boom': return json({}, 500);
      case 'garbage': res.writeHead(200); return res.end('<html>not json');
      case 'nouser': return json({ name: 'x' });
      case 'ctl': return json({ user: 'a\nb' });
      case 'past': return json({ user: 'p', exp: nowS() - 60 });
      case 'huge': res.writeHead(200); return res.end(JSON.stringify({ user: 'h', pad: 'x'.repeat(1 << 20) }));
      default: return json({}, 401);
    }
  });
}
async function startService(port) {
  const s = http.createServer(authHandler);
  servers.push(s);
  await new Promise((resolve) => s.listen(port, '127.0.0.1', resolve));
  return s;
}

// --- ws-push and clients ---------------------------------------------------------------------
const secret = crypto.randomBytes(32).toString('base64');
fs.writeFileSync(path.join(dir, 'secret'), secret + '\n');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (user) => {
  const signing = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: user, exp: nowS() + 600 })}`;
  return `${signing}.${crypto.createHmac('sha256', secret).update(signing).digest('base64url')}`;
};

async function startNode(args, name) {
  const [ws, push] = [await freePort(), await freePort()];
  const logPath = path.join(dir, `${name}.log`);
  const p = spawn(bin, ['--listen', `127.0.0.1:${ws}`, '--push-listen', `127.0.0.1:${push}`, ...args],
    { stdio: ['ignore', 'ignore', fs.openSync(logPath, 'w')] });
  children.push(p);
  const node = { p, url: `ws://127.0.0.1:${ws}/ws`, api: `http://127.0.0.1:${push}`, log: logPath };
  node.logText = () => fs.readFileSync(logPath, 'utf8');
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(node.api + '/healthz')).status === 200) return node; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`ws-push ${name} did not start: ${node.logText()}`);
}
const push = async (node, body) => {
  const r = await fetch(node.api + '/push', { method: 'POST', body });
  return (await r.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
const stats = async (node) => (await fetch(node.api + '/stats')).json();
const healthy = async (node) => { try { return (await fetch(node.api + '/healthz')).status === 200; } catch { return false; } };
async function until(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out: ${what}`);
}

function client(node, opts = {}) {
  const ws = new WebSocket(node.url, { headers: opts.headers ?? {}, autoPong: opts.autoPong ?? true });
  const c = { ws, messages: [], closed: null, status: null, pings: 0 };
  c.opened = new Promise((resolve) => {
    ws.on('open', () => resolve(true));
    ws.on('unexpected-response', (req, res) => { c.status = res.statusCode; resolve(false); });
    ws.on('error', () => resolve(false));
  });
  c.done = new Promise((resolve) => ws.on('close', (code) => { c.closed = code; c.closedAt = Date.now(); resolve(code); }));
  ws.on('ping', () => { c.pings++; });
  ws.on('message', (m) => {
    try { c.messages.push(JSON.parse(m.toString())); } catch { c.messages.push({ type: 'unparsable' }); }
  });
  c.next = (type, ms) => until(`a ${type} message`, () => c.messages.some((m) => m.type === type), ms);
  // Sends a login; resolves with login_ok's user, or null when the connection closed instead.
  c.login = async (tok) => {
    if (!(await c.opened)) return null;
    ws.send(JSON.stringify({ type: 'login', token: tok }));
    await withTimeout(Promise.race([c.next('login_ok'), c.done]), 8000, 'login answer');
    return c.messages.find((m) => m.type === 'login_ok')?.user ?? null;
  };
  return c;
}
const closeCode = (c, ms = 5000) => withTimeout(c.done, ms, 'the close');
const messages = (c) => c.messages.filter((m) => m.type === 'message');
const count = (text, needle) => text.split(needle).length - 1;

try {
  const svcPort = await freePort();
  await startService(svcPort);
  const authArgs = (port, extra = []) => ['--auth-url', `http://127.0.0.1:${port}/auth?v=1`, '--auth-secret-file',
    path.join(dir, 'svc-secret'), '--auth-timeout', '700ms', ...extra];
  const a = await startNode(authArgs(svcPort, ['--auth-cache-ttl', '1500ms']), 'auth');

  // Accepted, by message and by header; what the service was sent.
  const alice = client(a);
  check('auth service: login by message accepted', (await alice.login('ok:alice')) === 'alice');
  const req0 = seen[0] ?? {};
  check('the service gets a POST of {"token":...} as JSON', req0.method === 'POST' && req0.url === '/auth?v=1' &&
    req0.type === 'application/json' && req0.body === '{"token":"ok:alice"}', JSON.stringify(req0));
  check('the service gets its secret as a bearer token', req0.auth === `Bearer ${svcSecret}`);
  const bob = client(a, { headers: { Authorization: 'Bearer ok:bob' } });
  await bob.opened;
  await bob.next('login_ok', 5000);
  check('auth service: login by header accepted', bob.messages[0]?.user === 'bob', JSON.stringify(bob.messages));

  // A token for one user never gets another's messages.
  let r = await push(a, '{"user":"bob","data":"for bob"}\n{"user":"alice","data":"for alice"}');
  check('/push delivered to each', r[0]?.delivered === 1 && r[1]?.delivered === 1, JSON.stringify(r));
  await until('both got theirs', () => messages(alice).length === 1 && messages(bob).length === 1);
  check("alice's token never gets bob's message", messages(alice).every((m) => m.data === 'for alice'));
  check("bob's token never gets alice's message", messages(bob).every((m) => m.data === 'for bob'));

  // Refusals: the service's "no" (4001 / 401) and its failures (1013 / 503).
  const refusals = [
    ['401', 'deny', 4001, 401], ['403', 'forbid', 4001, 401], ['garbage', 'garbage', 4001, 401],
    ['no user', 'nouser', 4001, 401], ['a user with a newline', 'ctl', 4001, 401], ['an exp already past', 'past', 4001, 401],
    ['500', 'boom', 1013, 503], ['1 MiB answer', 'huge', 1013, 503],
  ];
  for (const [name, tok, code, status] of refusals) {
    const c = client(a);
    check(`refused: ${name} (login message)`, (await c.login(tok)) === null && c.closed === code, String(c.closed));
    const h = client(a, { headers: { Authorization: `Bearer ${tok}` } });
    check(`refused: ${name} (upgrade, ${status})`, !(await h.opened) && h.status === status, String(h.status));
  }
  check('a refusal (401) is cached: one request for two logins', requests.get('deny') === 1, String(requests.get('deny')));
  check('a failure (garbage) is not cached: two requests', requests.get('garbage') === 2, String(requests.get('garbage')));
  check('a failure (500) is not cached: two requests', requests.get('boom') === 2, String(requests.get('boom')));
  check('the node lives on after a huge answer', await healthy(a));
  const st = await stats(a);
  const f = st.auth_failures;
  check('/stats counts auth service reasons', f.auth_refused === 4 && f.auth_bad_answer === 2 && f.no_user === 4 &&
    f.expired === 2 && f.auth_error_status === 2 && f.auth_too_large === 2, JSON.stringify(f));
  let log = a.logText();
  check('the log names a service failure', log.includes('auth service http://127.0.0.1:') && log.includes('answered 500') &&
    log.includes('response too large'), log);
  check('the log says why a login was refused', log.includes('login refused: auth_refused'));
  check('no token and no service secret in the log', !log.includes('ok:alice') && !log.includes(svcSecret));

  // The cache: a second login within the TTL asks nothing; after it, one request.
  const c1 = client(a);
  await c1.login('ok:carol');
  const c2 = client(a);
  check('a cached acceptance logs in', (await c2.login('ok:carol')) === 'carol');
  check('no request within the cache TTL', requests.get('ok:carol') === 1, String(requests.get('ok:carol')));
  await sleep(1600);
  const c3 = client(a);
  await c3.login('ok:carol');
  check('one request after the TTL', requests.get('ok:carol') === 2, String(requests.get('ok:carol')));
  check('/stats auth_service counts cache hits', (await stats(a)).auth_service?.cache_hits >= 2);

  // Concurrent logins with one token share one request.
  const many = Array.from({ length: 5 }, () => client(a));
  const users = await Promise.all(many.map((c) => c.login('slow:dan:300')));
  check('five concurrent logins with one token: all accepted', users.every((u) => u === 'dan'), users.join());
  check('... with one request', requests.get('slow:dan:300') === 1, String(requests.get('slow:dan:300')));

  // A slow service: that login is refused after --auth-timeout; nobody else waits for it.
  const slowBefore = count(a.logText(), 'timed out; logins are refused meanwhile');
  const slow = [client(a), client(a), client(a)];
  const t0 = Date.now();
  const slowLogins = slow.map((c, i) => c.login(`slow:erin${i}:3000`));
  await sleep(100);
  const frankStart = Date.now();
  const frank = client(a);
  check('another login meanwhile is answered', (await frank.login('ok:frank')) === 'frank');
  const frankAt = Date.now();
  await push(a, '{"user":"alice","data":"during the slow login"}');
  await until('alice gets it', () => messages(alice).length === 2, 2000);
  const deliveredAt = Date.now();
  await Promise.all(slowLogins);
  const firstSlow = Math.min(...slow.map((c) => c.closedAt));
  check('a slow auth service delays nobody else: a login and a delivery done before the slow logins end',
    frankAt < firstSlow && deliveredAt < firstSlow && frankAt - frankStart < 500,
    `login ${frankAt - frankStart} ms, delivered ${deliveredAt - t0} ms, slow ones ended ${firstSlow - t0} ms after they began`);
  const slowMs = Math.max(...slow.map((c) => c.closedAt)) - t0;
  check('slow logins refused with 1013', slow.every((c) => c.closed === 1013), slow.map((c) => c.closed).join());
  check('... after --auth-timeout (700 ms), not long after', slowMs >= 600 && slowMs < 2000, `${slowMs} ms`);
  log = a.logText();
  check('three timeouts in a burst logged once', count(log, 'timed out; logins are refused meanwhile') === slowBefore + 1, log);

  // An exp in the answer bounds the connection as a JWT's does.
  const gina = client(a);
  check('an answer with exp accepted', (await gina.login('exp:gina:2')) === 'gina');
  check('... and closed with 4003 when it passes', (await closeCode(gina, 6000)) === 4003, String(gina.closed));

  // The service down: refused (1013 / 503), logged once, nothing else affected; then back.
  const downPort = await freePort();
  const d = await startNode(authArgs(downPort), 'down');
  const downs = [client(d), client(d), client(d)];
  for (const c of downs) await c.login('ok:henry');
  check('service down: logins closed with 1013', downs.every((c) => c.closed === 1013), downs.map((c) => c.closed).join());
  const dh = client(d, { headers: { Authorization: 'Bearer ok:henry' } });
  check('service down: an upgrade with a token gets 503', !(await dh.opened) && dh.status === 503, String(dh.status));
  log = d.logText();
  check('service down: logged once for the burst', count(log, 'logins are refused meanwhile') === 1, log);
  check('service down: the node is healthy', await healthy(d));
  check('service down: counted', (await stats(d)).auth_failures.auth_unavailable === 4);
  await startService(downPort);
  const back = client(d);
  check('service back: login accepted', (await back.login('ok:henry')) === 'henry');
  check('service back: logged', d.logText().includes('answering again'));

  // Configuration.
  const run = (args) => { try { execFileSync(bin, args, { stdio: 'pipe', env: {} }); return 0; } catch (e) { return e.status; } };
  check('--auth-url https: exit 64', run(['--auth-url', 'https://127.0.0.1:1/auth']) === 64);
  check('--auth-url with a password: exit 64', run(['--auth-url', 'http://u:p@127.0.0.1:1/auth']) === 64);
  check('--auth-url and --jwt-secret-file: exit 64', run(['--auth-url', 'http://127.0.0.1:1/', '--jwt-secret-file',
    path.join(dir, 'secret')]) === 64);
  check('--auth-url with --jwt-audience: exit 64', run(['--auth-url', 'http://127.0.0.1:1/', '--jwt-audience', 'x']) === 64);

  // Heartbeat: a ping after --ping-interval of silence; dropped when no pong within --pong-timeout.
  const hb = await startNode(['--jwt-secret-file', path.join(dir, 'secret'), '--ping-interval', '300ms',
    '--pong-timeout', '300ms'], 'heartbeat');
  const mute = client(hb, { autoPong: false });
  const live = client(hb);
  await mute.login(jwt('mute'));
  const loggedIn = Date.now();
  await live.login(jwt('live'));
  await closeCode(mute, 5000);
  const droppedMs = mute.closedAt - loggedIn;
  check('a client that answers no ping was pinged', mute.pings >= 1, String(mute.pings));
  check('... and dropped within ping-interval + pong-timeout (600 ms, ticks of 37 ms)',
    droppedMs >= 550 && droppedMs < 1600, `${droppedMs} ms`);
  await sleep(1500);
  check('a client that answers pings stays', live.closed === null && live.pings >= 3, `closed ${live.closed}, ${live.pings} pings`);
  r = await push(hb, '{"user":"live","data":1}');
  await until('the live client still receives', () => messages(live).length === 1, 2000);
  check('/stats pong_timeouts', (await stats(hb)).pong_timeouts === 1);

  // --idle-timeout: no message for that long closes with 4004; pongs do not count, messages do.
  const idle = await startNode(['--jwt-secret-file', path.join(dir, 'secret'), '--idle-timeout', '800ms',
    '--ping-interval', '200ms', '--pong-timeout', '400ms'], 'idle');
  const quiet = client(idle);
  const chatty = client(idle);
  await quiet.login(jwt('quiet'));
  const quietAt = Date.now();
  await chatty.login(jwt('chatty'));
  const talk = setInterval(() => chatty.ws.readyState === WebSocket.OPEN && chatty.ws.send('{"type":"ping"}'), 200);
  check('a client that sends no message is closed with 4004', (await closeCode(quiet, 5000)) === 4004, String(quiet.closed));
  const idleMs = quiet.closedAt - quietAt;
  check('... after --idle-timeout (800 ms), answering pings all along', idleMs >= 750 && idleMs < 2000 && quiet.pings >= 2,
    `${idleMs} ms, ${quiet.pings} pings`);
  await sleep(1000);
  clearInterval(talk);
  check('a client that sends messages stays', chatty.closed === null);
  check('/stats idle_closes', (await stats(idle)).idle_closes === 1);
} catch (e) {
  check('no exception', false, e.stack);
} finally {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) { s.closeAllConnections?.(); s.close(); }
  fs.rmSync(dir, { recursive: true, force: true });
}
finish();
