// The push half of the pipeline with one ws-push node killed -9 mid-stream (issue 13's test):
//   nsq-pub -t pushes (paced) -> nsq-broker --durable -> nsq-tail -c push | push-route | nsq-pub -t undelivered
// with two ws-push nodes (a, b) sharing Redis and `ws` clients: users on both nodes, on a only and
// on b only, and messages for two users at once. Node a is killed -9 once about a third of the
// messages were delivered. Then, counted per user from push-route's --delivered file and the
// undelivered records read back from NSQ (nsq-tail -t undelivered): sent = delivered + reported
// undelivered, every message accounted for exactly once, nothing for a user on b reported; each
// client on b got every message of its user once, in order; a client on a got nothing twice and
// nothing that was reported as not sent to it (offline).
// Usage: node pipeline_kill.mjs --bin BUILD/bin
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, finish, freePort, sleep } from './lib.mjs';
import { children, client, dir, exited, messages, redisCli, startNode, startRedis, token, until } from './push_peers.mjs';

const bin = process.argv[process.argv.indexOf('--bin') + 1];
const tool = (name) => path.join(bin, name);
const started = Date.now();
const total = 2100;  // messages; at 350/s the stream lasts 6 s
const rate = 350;

// Pipelines run in process groups of their own (detached), all ended when the script ends.
const groups = [];
process.on('exit', (code) => {
  for (const g of groups) try { process.kill(-g.pid, 'SIGKILL'); } catch { /* gone */ }
  if (code === 0) fs.rmSync(dir, { recursive: true, force: true });  // kept for a look when something failed
});
function pipeline(name, script, opts = {}) {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'w');
  const p = spawn('bash', ['-c', `set -o pipefail; ${script}`], { detached: true, stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'ignore', log],
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  fs.closeSync(log);
  groups.push(p);
  return p;
}
const readJsonLines = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const logTail = (name) => { try { return fs.readFileSync(path.join(dir, `${name}.log`), 'utf8').split('\n').slice(-6).join('\n'); } catch { return ''; } };

try {
  // --- peers: redis, NSQ, two push nodes ---------------------------------------------------
  const redisPort = await freePort();
  await startRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const [nsqTcp, nsqHttp] = [await freePort(), await freePort()];
  const brokerLog = fs.openSync(path.join(dir, 'nsq-broker.log'), 'w');
  fs.mkdirSync(path.join(dir, 'nsq'));
  const broker = spawn(tool('nsq-broker'), ['--tcp-address', `127.0.0.1:${nsqTcp}`, '--http-address', `127.0.0.1:${nsqHttp}`,
    '--data-path', path.join(dir, 'nsq'), '--durable'], { stdio: ['ignore', 'ignore', brokerLog] });
  children.push(broker);
  await until('nsq-broker answers', async () => { try { return (await fetch(`http://127.0.0.1:${nsqHttp}/ping`)).ok; } catch { return false; } });
  for (const q of ['topic/create?topic=pushes', 'channel/create?topic=pushes&channel=push', 'topic/create?topic=undelivered',
    'channel/create?topic=undelivered&channel=audit']) {
    check(`broker: ${q}`, (await fetch(`http://127.0.0.1:${nsqHttp}/${q}`, { method: 'POST' })).ok);
  }
  const nodeArgs = (id) => ['--redis', redisUrl, '--node-id', id, '--route-ttl', '3s'];
  const a = await startNode(tool('ws-push'), nodeArgs('a'), 'a');
  const b = await startNode(tool('ws-push'), nodeArgs('b'), 'b');

  // --- users and their clients ---------------------------------------------------------------
  const where = { both1: ['a', 'b'], both2: ['a', 'b'], aonly1: ['a'], aonly2: ['a'], bonly1: ['b'], bonly2: ['b'] };
  const clients = [];  // {user, node, c}
  for (const [user, nodes] of Object.entries(where)) {
    for (const n of nodes) {
      const c = client(n === 'a' ? a : b);
      await c.login(token(user));
      clients.push({ user, node: n, c });
    }
  }
  const zcard = (u) => Number(redisCli(redisPort, 'ZCARD', `pipekit:user:{${u}}:nodes`));
  await until('every route in Redis', () => Object.entries(where).every(([u, ns]) => zcard(u) === ns.length));

  // --- the messages: 6 of 7 for one user, 1 of 7 for a user on both nodes and one on a only ---
  const users = Object.keys(where);
  const sent = [];
  for (let i = 0; i < total; i++) {
    const k = i % 7;
    const m = k < 6 ? { user: users[k], data: { seq: i }, id: `m${i}` } : { users: ['both1', 'aonly1'], data: { seq: i }, id: `m${i}` };
    sent.push(m);
  }
  const usersOf = (m) => m.users ?? [m.user];

  // --- the pipeline ---------------------------------------------------------------------------
  const delivered = path.join(dir, 'delivered.jsonl');
  const audit = path.join(dir, 'undelivered.jsonl');
  const route = pipeline('route', `nsq-tail -t pushes -c push --nsqd-tcp-address 127.0.0.1:${nsqTcp} |
    push-route --redis ${redisUrl} --timeout 2s --delivered '${delivered}' --stats |
    nsq-pub -t undelivered --nsqd-tcp-address 127.0.0.1:${nsqTcp}`);
  const auditor = pipeline('audit', `nsq-tail -t undelivered -c audit --nsqd-tcp-address 127.0.0.1:${nsqTcp} > '${audit}'`);
  const input = path.join(dir, 'input.jsonl');
  fs.writeFileSync(input, sent.map((m) => JSON.stringify(m)).join('\n') + '\n');
  const publisher = pipeline('publish', `nsq-pub -t pushes --rate ${rate} --nsqd-tcp-address 127.0.0.1:${nsqTcp} '${input}'`);

  // Node a is killed -9 once about a third of the messages were delivered: mid-stream.
  await until('a third of the messages delivered', () => readJsonLines(delivered).length >= total / 3, 60000);
  a.p.kill('SIGKILL');
  const killedAt = readJsonLines(delivered).length;
  await exited(a.p);
  const publishCode = await exited(publisher);
  check('nsq-pub published every message (exit 0)', publishCode === 0, `${publishCode}: ${logTail('publish')}`);

  // Every message ends up delivered or reported (read back from NSQ).
  const accounted = () => {
    const ids = new Set(readJsonLines(delivered).map((r) => r.id));
    for (const r of readJsonLines(audit)) ids.add(r.id);
    return ids.size;
  };
  await until('every message delivered or reported undelivered', () => accounted() >= total, 60000)
    .catch((e) => check(e.message, false, `${accounted()} of ${total}`));
  // Clients on b get what b took; a moment for the last frames after push-route's last answer.
  await until('the clients on b got everything', () => clients.filter((x) => x.node === 'b').every((x) =>
    messages(x.c).length >= sent.filter((m) => usersOf(m).includes(x.user)).length), 20000).catch(() => {});
  await sleep(300);

  // --- counting, per message and per user ----------------------------------------------------
  const dl = readJsonLines(delivered);
  const und = readJsonLines(audit);
  const byId = new Map(sent.map((m) => [m.id, { m, delivered: 0, reported: {} }]));
  let strays = 0;
  for (const r of dl) {
    const e = byId.get(r.id);
    if (!e) { strays++; continue; }
    e.delivered++;
  }
  for (const r of und) {
    const e = byId.get(r.id);
    if (!e) { strays++; continue; }
    for (const u of r.users ?? []) (e.reported[u] ??= []).push(r.reason);
  }
  check('no record for a message that was not sent', strays === 0, `${strays}`);
  const per = Object.fromEntries(users.map((u) => [u, { sent: 0, delivered: 0, undelivered: 0, reasons: {} }]));
  let twice = 0, missing = 0, both = 0;
  for (const { m, delivered: d, reported } of byId.values()) {
    if (d > 1) twice++;
    const reportedUsers = Object.keys(reported);
    if (d === 1 && reportedUsers.length > 0) both++;
    if (d === 0 && reportedUsers.length === 0) missing++;
    for (const u of usersOf(m)) {
      per[u].sent++;
      const rs = reported[u] ?? [];
      if (rs.length > 1) twice++;
      if (rs.length === 0) per[u].delivered++;
      else {
        per[u].undelivered++;
        per[u].reasons[rs[0]] = (per[u].reasons[rs[0]] ?? 0) + 1;
      }
    }
  }
  check('every message accounted for: none missing', missing === 0, `${missing} missing`);
  check('no message both delivered and reported, none reported twice', twice === 0 && both === 0, `${twice} twice, ${both} both`);
  for (const [u, c] of Object.entries(per)) {
    check(`${u}: sent = delivered + undelivered`, c.sent === c.delivered + c.undelivered && c.sent > 0, JSON.stringify(c));
  }
  for (const u of ['both1', 'both2', 'bonly1', 'bonly2']) {
    check(`${u} (on b, which lived): nothing undelivered`, per[u].undelivered === 0, JSON.stringify(per[u]));
  }
  check('users on a only: some messages reported (the kill was mid-stream)',
    per.aonly1.undelivered > 0 && per.aonly2.undelivered > 0 && per.aonly1.delivered > 0, JSON.stringify([per.aonly1, per.aonly2]));
  const reasonsA = new Set([...Object.keys(per.aonly1.reasons), ...Object.keys(per.aonly2.reasons)]);
  check('users on a only: reported node_unreachable or offline', [...reasonsA].every((r) => r === 'node_unreachable' || r === 'offline'),
    [...reasonsA].join());

  // --- what each client received --------------------------------------------------------------
  for (const x of clients) {
    const got = messages(x.c).map((m) => m.data.seq);
    const mine = sent.filter((m) => usersOf(m).includes(x.user)).map((m) => m.data.seq);
    const dup = got.length - new Set(got).size;
    check(`${x.user} on ${x.node}: nothing twice`, dup === 0, `${dup} duplicates`);
    check(`${x.user} on ${x.node}: only its own messages`, got.every((s) => mine.includes(s)));
    if (x.node === 'b') {
      check(`${x.user} on b: every message of its user, in order`, got.join() === mine.join(),
        `${got.length} of ${mine.length}`);
    } else {
      // Whatever reached a client of a was not reported offline for its user (it was sent to a).
      const offline = new Set(sent.filter((m) => (byId.get(m.id).reported[x.user] ?? []).includes('offline')).map((m) => m.data.seq));
      check(`${x.user} on a: received nothing reported offline`, got.every((s) => !offline.has(s)));
      check(`${x.user} on a: in order`, got.every((s, i) => i === 0 || got[i - 1] < s));
    }
  }
  console.log(`node a killed -9 after ${killedAt} of ${total} delivered; per user: ` +
    Object.entries(per).map(([u, c]) => `${u} ${c.sent}=${c.delivered}+${c.undelivered}${c.undelivered ? JSON.stringify(c.reasons) : ''}`).join(', '));

  // nsq-tail FINs each message once push-route has read it (and a reader grace of 1 s passed):
  // nothing stays in flight on the channel, so a restart would deliver nothing twice.
  const channel = async () => {
    const st = await (await fetch(`http://127.0.0.1:${nsqHttp}/stats?format=json&topic=pushes&channel=push`)).json();
    return (st.topics ?? st.data?.topics ?? []).find((t) => t.topic_name === 'pushes')?.channels?.find((c) => c.channel_name === 'push');
  };
  await until('every message FINished on channel push', async () => { const c = await channel(); return c && c.depth === 0 && c.in_flight_count === 0; }, 20000)
    .catch(async (e) => check(e.message, false, JSON.stringify(await channel())));

  // SIGTERM to the pipeline: nsq-tail hands back nothing, push-route and nsq-pub finish and exit.
  process.kill(-route.pid, 'SIGTERM');
  process.kill(-auditor.pid, 'SIGTERM');
  const alive = (g) => { try { process.kill(-g.pid, 0); return true; } catch { return false; } };
  await until('the pipeline has stopped', () => !alive(route) && !alive(auditor), 15000)
    .catch((e) => check(e.message, false, logTail('route')));
  const routeLog = fs.readFileSync(path.join(dir, 'route.log'), 'utf8');
  const stats = routeLog.match(/stats: read=(\d+) delivered=(\d+) undelivered=(\d+)/);
  check('push-route exits with its --stats: every message read once', stats && Number(stats[1]) === total &&
    Number(stats[2]) + Number(stats[3]) === total, stats?.[0] ?? logTail('route'));
  check('nsq-tail hands back nothing at the end', !/[1-9]\d* requeued/.test(routeLog), logTail('route'));
} catch (e) {
  check('no exception', false, `${e.stack}\n--- route.log\n${logTail('route')}`);
}
console.log(`pipeline_kill: ${((Date.now() - started) / 1000).toFixed(1)} s (files in ${dir}, removed when every check passed)`);
finish();
