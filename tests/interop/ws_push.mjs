// ws-push with real peers: clients from npm's `ws`, Debian's redis-server (and redis-cli to read
// the routes), tokens minted here with node's crypto (HS256 by HMAC, ES256 by an EC key pair).
// Covers login by message and by header, every refusal, multi-device delivery and user isolation,
// /push's answers, the protocol's edges (ping, garbage, too big, login timeout, token expiry),
// origins, a slow consumer closed while others keep receiving, two nodes' routes in Redis, Redis
// stopped and restarted under live connections, SIGTERM's drain (1001, routes withdrawn), and
// wss:// with a CA the openssl CLI makes here (plain, garbage and silent peers on the TLS port).
// Usage: node ws_push.mjs --ws-push PATH/TO/ws-push
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { check, finish, freePort, sleep, withTimeout } from './lib.mjs';

const bin = process.argv[process.argv.indexOf('--ws-push') + 1];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipekit-ws-push-'));
const children = [];
const exited = (p) => new Promise((resolve) => p.on('exit', (code, signal) => resolve(code ?? signal)));
// Whatever way the script ends, the peers it started end with it.
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// --- tokens ---------------------------------------------------------------------------------
const secret = crypto.randomBytes(32).toString('base64');
fs.writeFileSync(path.join(dir, 'secret'), secret + '\n');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const hs256 = (claims, key = secret, header = { alg: 'HS256', typ: 'JWT' }) => {
  const signing = `${b64(header)}.${b64(claims)}`;
  return `${signing}.${crypto.createHmac('sha256', key).update(signing).digest('base64url')}`;
};
const token = (user, ttl = 600) => hs256({ sub: user, exp: now() + ttl });

// --- peers ----------------------------------------------------------------------------------
const redis = (port, ...args) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
async function startRedis(port) {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  children.push(p);
  for (let i = 0; i < 200; i++) {
    try { if (redis(port, 'PING') === 'PONG') return p; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

async function startNode(extra, name, auth = ['--jwt-secret-file', path.join(dir, 'secret')]) {
  const [ws, push] = [await freePort(), await freePort()];
  const logPath = path.join(dir, `${name}.log`);
  const log = fs.openSync(logPath, 'w');
  const p = spawn(bin, [...auth, '--listen', `127.0.0.1:${ws}`, '--push-listen', `127.0.0.1:${push}`, ...extra],
    { stdio: ['ignore', 'ignore', log] });
  children.push(p);
  const node = { p, ws, push, url: `ws://127.0.0.1:${ws}/ws`, api: `http://127.0.0.1:${push}`, log: logPath };
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(node.api + '/healthz')).status === 200) return node; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`ws-push ${name} did not start: ${fs.readFileSync(logPath, 'utf8')}`);
}
const push = async (node, body, headers = {}) => {
  const r = await fetch(node.api + '/push', { method: 'POST', body, headers });
  const text = await r.text();
  return { status: r.status, lines: r.status === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [] };
};
const stats = async (node) => (await fetch(node.api + '/stats')).json();
async function until(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out: ${what}`);
}

// A client: collects messages and its close code.
function client(node, opts = {}) {
  const ws = new WebSocket(opts.url ?? node.url, { headers: opts.headers ?? {}, origin: opts.origin, ca: opts.ca ?? node.ca });
  const c = { ws, messages: [], closed: null, status: null };
  c.opened = new Promise((resolve) => {
    ws.on('open', () => resolve(true));
    ws.on('unexpected-response', (req, res) => { c.status = res.statusCode; resolve(false); });
    ws.on('error', () => resolve(false));
  });
  c.done = new Promise((resolve) => ws.on('close', (code) => { c.closed = code; resolve(code); }));
  ws.on('message', (m) => {
    // Not JSON is a failure to report, never an exception that ends the script with its peers running.
    try { c.messages.push(JSON.parse(m.toString())); } catch { c.messages.push({ type: 'unparsable', text: m.toString().slice(0, 200) }); }
  });
  c.next = (type) => until(`a ${type} message`, () => c.messages.some((m) => m.type === type));
  c.login = async (tok) => {
    await c.opened;
    ws.send(JSON.stringify({ type: 'login', token: tok }));
    await withTimeout(Promise.race([c.next('login_ok'), c.done]), 5000, 'login answer');
    return c.messages.find((m) => m.type === 'login_ok');
  };
  return c;
}
const closeCode = (c, ms = 5000) => withTimeout(c.done, ms, 'the close');
const messages = (c) => c.messages.filter((m) => m.type === 'message');

try {
  const redisPort = await freePort();
  let redisProc = await startRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const a = await startNode(['--redis', redisUrl, '--node-id', 'a', '--route-ttl', '900ms', '--login-timeout', '400ms',
    '--send-queue-bytes', '65536', '--max-message-size', '1024'], 'a');
  const b = await startNode(['--redis', redisUrl, '--node-id', 'b', '--route-ttl', '900ms'], 'b');

  // Login by message, by header; two devices of one user; user isolation.
  const alice1 = client(a);
  check('login by message', (await alice1.login(token('alice')))?.user === 'alice');
  const alice2 = client(a, { headers: { Authorization: `Bearer ${token('alice')}` } });
  await alice2.opened;
  await withTimeout(alice2.next('login_ok'), 5000, 'header login');
  check('login by Authorization header', alice2.messages[0]?.user === 'alice');
  const bob = client(a);
  await bob.login(token('bob'));
  let r = await push(a, '{"user":"alice","data":{"text":"hi"},"id":"m1"}\n{"users":["alice","carol"],"data":2}\nnot json\n{"data":1}\n{"user":"alice"}\n');
  check('/push answers each line in order', r.lines.map((l) => l.line).join() === '1,2,3,4,5', JSON.stringify(r.lines));
  check('/push: delivered to both devices', r.lines[0]?.delivered === 2 && r.lines[0]?.id === 'm1', JSON.stringify(r.lines[0]));
  check('/push: offline users listed', r.lines[1]?.delivered === 2 && r.lines[1]?.offline?.join() === 'carol', JSON.stringify(r.lines[1]));
  check('/push: invalid lines are errors', r.lines[2]?.error === 'invalid_json' && r.lines[3]?.error === 'invalid_message' &&
    r.lines[4]?.error === 'invalid_message', JSON.stringify(r.lines.slice(2)));
  await until('both devices get both messages', () => messages(alice1).length === 2 && messages(alice2).length === 2);
  r = await push(a, '{"broadcast":1,"data":1}\n{"user":"alice","stored":"yes","data":1}\n');
  check('/push: "broadcast" or "stored" not a boolean: invalid_message, the node stays up',
    r.lines[0]?.error === 'invalid_message' && /broadcast/.test(r.lines[0]?.message) &&
    r.lines[1]?.error === 'invalid_message' && /stored/.test(r.lines[1]?.message), JSON.stringify(r.lines));
  // Nested 100,000 deep (200 kB): the node ended on a stack overflow dumping it; read as a tree
  // (names out of order) or plainly, it is an invalid_message now, and the node stays up.
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  r = await push(a, `{"user":"carol","data":{"b":1,"a":${deep}}}\n{"user":"carol","data":${deep}}\n{"user":"carol","data":"after"}\n`);
  check('/push: nested too deep: invalid_message, the node stays up', r.status === 200 && r.lines.length === 3 &&
    r.lines.slice(0, 2).every((l) => l.error === 'invalid_message' && /deeper than 128/.test(l.message)) &&
    r.lines[2]?.offline?.join() === 'carol', JSON.stringify(r.lines).slice(0, 500));
  check('every message is JSON', ![alice1, alice2, bob].some((c) => c.messages.some((m) => m.type === 'unparsable')));
  // With Redis the node keeps a history: the id is the message's stream id, the sender's id is "ref".
  check('what a client receives', /^\{"type":"message","id":"\d+-\d+","data":\{"text":"hi"\},"ref":"m1"\}$/.test(JSON.stringify(messages(alice1)[0])),
    JSON.stringify(messages(alice1)[0]));
  check('both devices get the same stream id', messages(alice1)[0]?.id === messages(alice2)[0]?.id);
  check('another user gets nothing of it', messages(bob).length === 0);
  r = await push(a, '{"broadcast":true,"data":"all"}');
  check('broadcast reaches every connection here', r.lines[0]?.delivered === 3, JSON.stringify(r.lines));

  // Routes in Redis: both nodes, each writing only its own member.
  const zrange = (user) => redis(redisPort, 'ZRANGE', `pipekit:user:{${user}}:nodes`, '0', '-1').split('\n').filter(Boolean).sort().join();
  const carol = client(b);
  await carol.login(token('carol'));
  const dave = client(b);
  await dave.login(token('alice'));  // alice on node b too
  await until('a user on two nodes has both routes', () => zrange('alice') === 'a,b');
  check('node b registered with its push address', redis(redisPort, 'GET', 'pipekit:node:b') === `127.0.0.1:${b.push}`);
  check('live-node set', redis(redisPort, 'ZRANGE', 'pipekit:nodes', '0', '-1').split('\n').sort().join() === 'a,b');
  check('route keys expire', Number(redis(redisPort, 'PTTL', 'pipekit:user:{alice}:nodes')) > 0);
  const score = Number(redis(redisPort, 'ZSCORE', 'pipekit:user:{carol}:nodes', 'b'));
  check('a route scores its expiry', score > Date.now() - 100 && score <= Date.now() + 1000, String(score));
  await until('routes refreshed before they expire',
    () => Number(redis(redisPort, 'ZSCORE', 'pipekit:user:{carol}:nodes', 'b')) > score);
  dave.ws.close();
  await until("alice's last connection on b gone: only a's route left", () => zrange('alice') === 'a');
  // More users than one refresh slice (256): every route is refreshed, each slice sent after the
  // last one's answer (a chain that stopped after its first slice would let the rest expire).
  const many = Array.from({ length: 600 }, () => client(b));
  await Promise.all(many.map((c, i) => c.login(token(`r${i}`))));
  const refreshedSince = (t) => Number(redis(redisPort, 'EVAL',
    "local n = 0 for i = 0, 599 do local s = redis.call('ZSCORE', 'pipekit:user:{r' .. i .. '}:nodes', 'b') " +
    'if s and tonumber(s) > tonumber(ARGV[1]) then n = n + 1 end end return n', '0', String(t)));
  await until('600 routes registered', () => refreshedSince(0) === 600);
  const registered = Date.now() + 900;  // every registration so far expires before this
  await until('all 600 routes refreshed', () => refreshedSince(registered) === 600);
  many.forEach((c) => c.ws.close());
  await Promise.all(many.map((c) => c.done));

  // Refusals, each by message (close 4001) and on the upgrade request (401).
  const refusals = {
    'garbage token': 'not.a.token',
    'expired token': hs256({ sub: 'x', exp: now() - 120 }),
    'not yet valid': hs256({ sub: 'x', nbf: now() + 120 }),
    'wrong signature': hs256({ sub: 'x' }, 'another secret of at least thirty-two bytes'),
    'alg none': `${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`,
    'HS512 instead of HS256': (() => {
      const s = `${b64({ alg: 'HS512' })}.${b64({ sub: 'x' })}`;
      return `${s}.${crypto.createHmac('sha512', secret).update(s).digest('base64url')}`;
    })(),
    'no user claim': hs256({ exp: now() + 60 }),
  };
  for (const [name, tok] of Object.entries(refusals)) {
    const c = client(a);
    await c.opened;
    c.ws.send(JSON.stringify({ type: 'login', token: tok }));
    check(`refused: ${name} (4001)`, (await closeCode(c)) === 4001, String(c.closed));
    const h = client(a, { headers: { Authorization: `Bearer ${tok}` } });
    check(`refused on the upgrade: ${name} (401)`, !(await h.opened) && h.status === 401, String(h.status));
  }
  const st = await stats(a);
  check('refusals counted by reason', st.auth_failures.expired >= 2 && st.auth_failures.wrong_algorithm >= 4 &&
    st.auth_failures.bad_signature >= 2 && st.auth_failures.no_user >= 2, JSON.stringify(st.auth_failures));
  const logText = fs.readFileSync(a.log, 'utf8');
  check('the log says why', logText.includes('login refused: expired') && logText.includes('login refused: wrong_algorithm'));
  check('no secret in the log', !logText.includes(secret));

  // Protocol: ping, garbage, too big, a message before login, login timeout, another user's
  // login on a connection, token expiry.
  alice1.ws.send('{"type":"ping"}');
  await alice1.next('pong');
  check('ping answered with pong', true);
  const noisy = client(a);
  await noisy.login(token('eve'));
  for (let i = 0; i < 11; i++) noisy.ws.send(i % 2 ? 'garbage' : '{"type":"what"}');
  check('repeated garbage closes with 1008', (await closeCode(noisy)) === 1008, String(noisy.closed));
  check('garbage answered with errors first', noisy.messages.filter((m) => m.type === 'error').length === 10);
  const big = client(a);
  await big.login(token('eve'));
  big.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2000) }));
  check('a message over --max-message-size closes with 1009', (await closeCode(big)) === 1009, String(big.closed));
  const early = client(a);
  await early.opened;
  early.ws.send('{"type":"ping"}');
  check('a message before login closes with 4001', (await closeCode(early)) === 4001);
  const silent = client(a);
  await silent.opened;
  check('no login within --login-timeout closes with 4002', (await closeCode(silent)) === 4002);
  const swap = client(a);
  await swap.login(token('frank'));
  swap.ws.send(JSON.stringify({ type: 'login', token: token('grace') }));
  check('a login as another user on a logged-in connection closes it', (await closeCode(swap)) === 4001);
  const shortLived = client(a);
  await shortLived.login(hs256({ sub: 'henry', exp: now() + 1 }));
  check('a connection whose token expires is closed with 4003', (await closeCode(shortLived, 15000)) === 4003);

  // Origins: the same host is allowed by default, others refused.
  const same = client(a, { origin: `http://127.0.0.1:${a.ws}` });
  check('same-host origin allowed', await same.opened);
  same.ws.close();
  const evil = client(a, { origin: 'https://evil.example' });
  check('foreign origin refused with 403', !(await evil.opened) && evil.status === 403, String(evil.status));
  // A frame sent with the upgrade request, before the 101 (RFC 6455 4.1 forbids it): 400, not a
  // login lost in silence.
  const early101 = await withTimeout(new Promise((resolve) => {
    const frame = (text) => {
      const p = Buffer.from(text), m = crypto.randomBytes(4);
      return Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), m, p.map((c, i) => c ^ m[i % 4])]);
    };
    const s = net.connect(a.ws, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    frame(JSON.stringify({ type: 'login', token: token('pipeliner') }))])));
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('close', () => resolve(got));
    s.on('error', () => {});
  }), 5000, 'the answer to a frame before the 101');
  check('a frame sent before the 101 is refused with 400', early101.startsWith('HTTP/1.1 400'), JSON.stringify(early101.slice(0, 60)));

  // A slow consumer is closed; others keep receiving.
  const slow = client(a);
  await slow.login(token('slow'));
  slow.ws._socket.pause();
  const chunk = 'y'.repeat(8000);
  let dropped = 0;
  for (let i = 0; i < 100 && !dropped; i++) {
    // The slow client gets large messages; bob, between them, small ones.
    const body = Array.from({ length: 100 }, (_, j) => JSON.stringify(j % 2 ? { user: 'bob', data: j } : { user: 'slow', data: chunk })).join('\n');
    r = await push(a, body);
    dropped = r.lines.reduce((n, l) => n + (l.dropped ?? 0), 0);
  }
  check('an overflowing send queue drops and says so', dropped > 0);
  await until('the slow consumer counted', async () => (await stats(a)).slow_consumer_closes === 1);
  const seen = messages(bob).length;
  await push(a, '{"user":"bob","data":"still here"}');
  await until('bob still receives', () => messages(bob).length > seen && messages(bob).at(-1).data === 'still here', 20000);
  check('other connections unaffected by a slow one', true);
  slow.ws.terminate();

  // Redis stopped: local delivery goes on, /healthz degraded; restarted: routes come back.
  redisProc.kill('SIGKILL');
  await exited(redisProc);
  await until('/healthz degraded', async () => (await (await fetch(a.api + '/healthz')).json()).status === 'degraded');
  r = await push(a, '{"user":"bob","data":"without redis"}');
  check('delivery without redis', r.lines[0]?.delivered === 1, JSON.stringify(r.lines));
  redisProc = await startRedis(redisPort);
  await until('routes rewritten after redis returns', () => zrange('bob') === 'a', 5000);
  await until('healthz ok again', async () => (await (await fetch(a.api + '/healthz')).json()).status === 'ok');
  const logA = fs.readFileSync(a.log, 'utf8');
  check('the outage logged once, not per message or retry', (logA.match(/retrying with backoff/g) ?? []).length === 1, logA);

  // SIGTERM: clients get 1001, routes withdrawn, exit 0.
  const gone = exited(b.p);
  b.p.kill('SIGTERM');
  check('SIGTERM closes clients with 1001', (await closeCode(carol)) === 1001, String(carol.closed));
  check('ws-push exits 0 after draining', (await withTimeout(gone, 10000, 'exit')) === 0);
  check("the node's routes are withdrawn", zrange('carol') === '' && redis(redisPort, 'EXISTS', 'pipekit:node:b') === '0');

  // ES256 with a public key; the public key used as an HMAC secret is refused.
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  fs.writeFileSync(path.join(dir, 'ec.pem'), pem);
  const es = await startNode([], 'es', ['--jwt-public-key', path.join(dir, 'ec.pem'), '--jwt-algorithm', 'ES256']);
  const signing = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ sub: 'ivy', exp: now() + 60 })}`;
  const sig = crypto.sign('sha256', Buffer.from(signing), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  const ivy = client(es);
  check('ES256 token from node crypto accepted', (await ivy.login(`${signing}.${sig}`))?.user === 'ivy');
  const confused = client(es);
  await confused.opened;
  confused.ws.send(JSON.stringify({ type: 'login', token: hs256({ sub: 'ivy' }, pem) }));
  check('HS256 signed with the public key (confusion) refused', (await closeCode(confused)) === 4001);

  // The push token.
  fs.writeFileSync(path.join(dir, 'push-token'), 'p-token\n');
  const guarded = await startNode(['--push-token-file', path.join(dir, 'push-token')], 'guarded');
  check('/push without the token: 401', (await push(guarded, '{"broadcast":true,"data":1}')).status === 401);
  check('/push with the token: 200', (await push(guarded, '{"broadcast":true,"data":1}', { Authorization: 'Bearer p-token' })).status === 200);

  // --stdin: messages from a pipe, answers on stdout in order, drain and exit at its end.
  {
    const [ws, pushPort] = [await freePort(), await freePort()];
    const p = spawn(bin, ['--jwt-secret-file', path.join(dir, 'secret'), '--listen', `127.0.0.1:${ws}`,
      '--push-listen', `127.0.0.1:${pushPort}`, '--stdin', '-q'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(p);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const node = { url: `ws://127.0.0.1:${ws}/ws`, api: `http://127.0.0.1:${pushPort}` };
    await until('the --stdin node up', async () => { try { return (await fetch(node.api + '/healthz')).status === 200; } catch { return false; } });
    const kim = client(node);
    await kim.login(token('kim'));
    p.stdin.write('{"user":"kim","data":"one","id":1}\n\n');
    await until('a message from stdin delivered', () => messages(kim).length === 1);
    check('its answer on stdout at once', out === '{"line":1,"id":1,"delivered":1}\n', JSON.stringify(out));
    const gone = exited(p);
    p.stdin.end('oops\n{"user":"nobody","data":2}');  // a bad line, and a last line without a newline
    check('end of input: drained, exit 65 for the bad line', (await withTimeout(gone, 10000, 'exit')) === 65);
    check('answers for every line, numbered as read', out.split('\n').filter(Boolean).map((l) => JSON.parse(l).line).join() === '1,3,4' &&
      out.includes('"error":"invalid_json"') && out.includes('"offline":["nobody"]'), out);
    check('clients closed with 1001 at the end of input', (await closeCode(kim)) === 1001);
  }

  // ws-push connect: the terminal client logs in, prints messages as JSON lines, -n ends it.
  {
    fs.writeFileSync(path.join(dir, 'lee.token'), token('lee') + '\n');
    const c = spawn(bin, ['connect', a.url, '--token-file', path.join(dir, 'lee.token'), '-n', '2'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    const gone = exited(c);
    await until('connect logged in', () => err.includes('logged in as lee'));
    await push(a, '{"user":"lee","data":{"n":1},"id":"x1"}\n{"user":"lee","data":{"n":2}}\n{"user":"lee","data":{"n":3}}');
    check('connect -n 2 exits 0', (await withTimeout(gone, 5000, 'connect exit')) === 0, err);
    check('connect prints each message as a JSON line', /^\{"type":"message","id":"\d+-\d+","data":\{"n":1\},"ref":"x1"\}\n\{"type":"message","id":"\d+-\d+","data":\{"n":2\}\}\n$/.test(out), out);
    const refused = spawn(bin, ['-q', 'connect', a.url], { stdio: 'ignore', env: { WS_PUSH_TOKEN: hs256({ sub: 'x', exp: now() - 60 }) } });
    check('connect with a refused token exits 77 at once', (await withTimeout(exited(refused), 5000, 'refused exit')) === 77);
    const waiting = spawn(bin, ['-q', 'connect', a.url], { stdio: 'ignore', env: { WS_PUSH_TOKEN: token('lee') } });
    children.push(waiting);
    await until('lee connected again', async () => (await push(a, '{"user":"lee","data":0}')).lines[0]?.delivered === 1);
    waiting.kill('SIGTERM');
    check('connect ends 0 on SIGTERM', (await withTimeout(exited(waiting), 5000, 'SIGTERM exit')) === 0);
  }

  // wss://: a CA and a server certificate for 127.0.0.1 and localhost, made here by the openssl CLI.
  {
    const t = path.join(dir, 'tls');
    fs.mkdirSync(t);
    const openssl = (...args) => execFileSync('openssl', args, { cwd: t, stdio: 'ignore' });
    for (const n of ['ca', 'other-ca'])
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=pipekit test ${n}`, '-keyout', `${n}.key`, '-out', `${n}.pem`);
    fs.writeFileSync(path.join(t, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=pipekit test server', '-keyout', 'server.key', '-out', 'server.csr');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', 'server.ext', '-out', 'server.pem');
    const ca = fs.readFileSync(path.join(t, 'ca.pem'));
    const s = await startNode(['--tls-cert', path.join(t, 'server.pem'), '--tls-key', path.join(t, 'server.key'),
      '--handshake-timeout', '500ms'], 'tls');
    s.url = `wss://127.0.0.1:${s.ws}/ws`;
    s.ca = ca;
    const mia = client(s);
    check('wss: login over TLS', (await mia.login(token('mia')))?.user === 'mia');
    r = await push(s, '{"user":"mia","data":"over tls"}');
    await until('a message over wss', () => messages(mia).length === 1);
    check('wss: a message delivered', messages(mia)[0]?.data === 'over tls' && r.lines[0]?.delivered === 1, JSON.stringify(r.lines));
    const byName = client(s, { url: `wss://localhost:${s.ws}/ws` });
    check('wss: the host name in the certificate verifies too', await byName.opened);
    byName.ws.close();

    // Peers that do not speak TLS end their own connection only, each counted.
    const plain = client(s, { url: `ws://127.0.0.1:${s.ws}/ws` });
    check('a ws:// client on the TLS port fails', !(await plain.opened));
    await withTimeout(plain.done, 5000, 'the plain client closed');
    const raw = (bytes) => new Promise((resolve) => {
      const sock = net.connect(s.ws, '127.0.0.1', () => { if (bytes) sock.write(bytes); });
      sock.on('error', () => {});
      sock.on('close', () => resolve(true));
    });
    check('garbage on the TLS port: the node closes that connection',
      await withTimeout(raw(crypto.randomBytes(300)), 5000, 'garbage closed'));
    const t0 = Date.now();
    check('a peer that never starts TLS is closed by --handshake-timeout', await withTimeout(raw(null), 5000, 'silent peer closed'));
    check('... after about the timeout', Date.now() - t0 >= 400, String(Date.now() - t0));
    const wrongCa = client(s, { ca: fs.readFileSync(path.join(t, 'other-ca.pem')) });
    check('a client trusting another CA refuses the node', !(await wrongCa.opened));
    await until('failed TLS handshakes counted', async () => (await stats(s)).tls_handshake_failures >= 4);
    const failed = (await stats(s)).tls_handshake_failures;
    check('the 4 failed TLS handshakes counted, no more', failed === 4, String(failed));
    const mia2 = client(s);
    check('the node still serves wss after all of them', (await mia2.login(token('mia')))?.user === 'mia');
    check('the node is still running', s.p.exitCode === null);
    const logT = fs.readFileSync(s.log, 'utf8');
    check('the log says why a handshake failed', logT.includes('TLS handshake failed') && logT.includes('timed out'), logT);

    // ws-push connect wss://: verified against --tls-root-ca-file; refused against another CA.
    fs.writeFileSync(path.join(dir, 'nia.token'), token('nia') + '\n');
    const c = spawn(bin, ['connect', s.url, '--token-file', path.join(dir, 'nia.token'), '-n', '1',
      '--tls-root-ca-file', path.join(t, 'ca.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    const gone = exited(c);
    await until('connect wss logged in', () => err.includes('logged in as nia'));
    await push(s, '{"user":"nia","data":"secure","id":"t1"}');
    check('connect wss:// -n 1 exits 0', (await withTimeout(gone, 5000, 'connect exit')) === 0, err);
    check('connect wss:// prints the message', out === '{"type":"message","id":"t1","data":"secure"}\n', out);
    const bad = spawn(bin, ['connect', s.url, '--tls-root-ca-file', path.join(t, 'other-ca.pem')],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { WS_PUSH_TOKEN: token('nia') } });
    children.push(bad);
    let badErr = '';
    bad.stderr.on('data', (d) => { badErr += d; });
    check('connect: a certificate that does not verify exits 69', (await withTimeout(exited(bad), 5000, 'bad CA exit')) === 69, badErr);
    check('... saying why', badErr.includes('certificate verify failed'), badErr);
    const insecure = spawn(bin, ['-q', 'connect', s.url.replace('127.0.0.1', 'localhost'), '--tls-insecure-skip-verify', '-n', '1'],
      { stdio: ['ignore', 'pipe', 'ignore'], env: { WS_PUSH_TOKEN: token('nia') } });
    children.push(insecure);
    await until('connect --tls-insecure-skip-verify logged in', async () => (await push(s, '{"user":"nia","data":2}')).lines[0]?.delivered === 1);
    check('connect --tls-insecure-skip-verify', (await withTimeout(exited(insecure), 5000, 'insecure exit')) === 0);
    const runConnect = (args) => { try { execFileSync(bin, ['connect', ...args], { stdio: 'pipe', env: { WS_PUSH_TOKEN: 'x' }, timeout: 5000 }); return 0; } catch (e) { return e.status; } };
    check('connect: a CA with a ws:// URL is 64', runConnect([a.url, '--tls-root-ca-file', path.join(t, 'ca.pem')]) === 64);
    check('connect: a missing CA file is 66', runConnect([s.url, '--tls-root-ca-file', path.join(t, 'none.pem')]) === 66);
    for (const m of [mia, mia2]) m.ws.close();

    // Configuration errors of the TLS flags.
    let nodeErr = '';
    const runNode = (args) => {
      nodeErr = '';
      try {
        execFileSync(bin, ['--jwt-secret-file', path.join(dir, 'secret'), '--listen', '127.0.0.1:0',
          '--push-listen', '127.0.0.1:0', ...args], { stdio: 'pipe', env: {}, timeout: 5000 });
        return 0;
      } catch (e) { nodeErr = String(e.stderr); return e.status; }
    };
    check('a missing --tls-cert file: exit 66', runNode(['--tls-cert', path.join(t, 'none.pem'), '--tls-key', path.join(t, 'server.key')]) === 66);
    check('... naming the file', nodeErr.includes('--tls-cert') && nodeErr.includes('none.pem'), nodeErr);
    check('--tls-key without --tls-cert: exit 64', runNode(['--tls-key', path.join(t, 'server.key')]) === 64);
    check('a --tls-cert that is not a certificate: exit 78', runNode(['--tls-cert', path.join(t, 'server.csr'), '--tls-key', path.join(t, 'server.key')]) === 78);
    check('... naming the file', nodeErr.includes('server.csr'), nodeErr);
    check('a --tls-key that is not the certificate\'s: exit 78', runNode(['--tls-cert', path.join(t, 'server.pem'), '--tls-key', path.join(t, 'ca.key')]) === 78);
    check('... naming both files', nodeErr.includes('ca.key') && nodeErr.includes('server.pem'), nodeErr);
    check('--tls-min-version tls1.1: exit 64', runNode(['--tls-cert', path.join(t, 'server.pem'), '--tls-key', path.join(t, 'server.key'), '--tls-min-version', 'tls1.1']) === 64);
  }

  // Configuration errors.
  const run = (args) => { try { execFileSync(bin, args, { stdio: 'pipe', env: {} }); return 0; } catch (e) { return e.status; } };
  check('no verification configured: exit 78', run(['--listen', '127.0.0.1:0']) === 78);
  fs.writeFileSync(path.join(dir, 'short'), 'short\n');
  check('a short HMAC secret: exit 78', run(['--jwt-secret-file', path.join(dir, 'short')]) === 78);
  check('an unreadable secret file: exit 66', run(['--jwt-secret-file', path.join(dir, 'missing')]) === 66);
  check('an unknown algorithm: exit 64', run(['--jwt-secret-file', path.join(dir, 'secret'), '--jwt-algorithm', 'none']) === 64);
} catch (e) {
  check('no exception', false, e.stack);
} finally {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}
finish();
