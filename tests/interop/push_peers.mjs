// The push cluster's peers for interop scripts: a temp dir, redis-server (Debian), ws-push nodes,
// HS256 tokens minted with node's crypto, and `ws` clients that collect what they receive.
// Every process started here is killed when the script exits, whatever way it ends.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { freePort, sleep, withTimeout } from './lib.mjs';

export const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipekit-push-'));
export const children = [];
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
// A child's exit status once it has exited and its stdout and stderr are read to the end: on 'close',
// not 'exit', after which output may still be unread (interop-push-route once saw a push-route
// that exited 0 with none of its records or log lines read yet).
export const exited = (p) => new Promise((resolve) => {
  const drained = [p.stdout, p.stderr].every((s) => !s || s.closed);
  if ((p.exitCode !== null || p.signalCode !== null) && drained) return resolve(p.exitCode ?? p.signalCode);
  p.once('close', (code, signal) => resolve(code ?? signal));
});

// --- tokens ---------------------------------------------------------------------------------
export const secret = crypto.randomBytes(32).toString('base64');
export const secretFile = path.join(dir, 'secret');
fs.writeFileSync(secretFile, secret + '\n');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);
export const hs256 = (claims, key = secret, header = { alg: 'HS256', typ: 'JWT' }) => {
  const signing = `${b64(header)}.${b64(claims)}`;
  return `${signing}.${crypto.createHmac('sha256', key).update(signing).digest('base64url')}`;
};
export const token = (user, ttl = 600) => hs256({ sub: user, exp: now() + ttl });

// A condition polled until true, or an error naming it after ms.
export async function until(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out: ${what}`);
}

// --- redis-server ---------------------------------------------------------------------------
export const redisCli = (port, ...args) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
export async function startRedis(port) {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  children.push(p);
  for (let i = 0; i < 200; i++) {
    try { if (redisCli(port, 'PING') === 'PONG') return p; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

// --- ws-push nodes --------------------------------------------------------------------------
export async function startNode(bin, extra, name, auth = ['--jwt-secret-file', secretFile]) {
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
export const stats = async (node) => (await fetch(node.api + '/stats')).json();

// --- clients --------------------------------------------------------------------------------
// A client: collects messages and its close code.
export function client(node, opts = {}) {
  const ws = new WebSocket(node.url, { headers: opts.headers ?? {}, origin: opts.origin });
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
  c.login = async (tok, since) => {
    await c.opened;
    ws.send(JSON.stringify(since === undefined ? { type: 'login', token: tok } : { type: 'login', token: tok, since }));
    await withTimeout(Promise.race([c.next('login_ok'), c.done]), 5000, 'login answer');
    return c.messages.find((m) => m.type === 'login_ok');
  };
  return c;
}
export const messages = (c) => c.messages.filter((m) => m.type === 'message');
