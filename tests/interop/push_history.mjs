// Message history with real peers: Debian's redis-server, ws-push nodes, push-route, npm `ws`
// clients. A message is stored once per user whichever way it came (push-route stamps it; a
// node's /push stores what no router stamped); a client that logs in with "since" gets what it
// missed, in order, exactly once, then the live ones with no gap and no duplicate at the seam, even
// while messages keep coming; trimming (--history-size) and an unreachable history are told to
// the client as {"type":"gap"}, never silently; --replay-on-login N.
// Usage: node push_history.mjs --push-route PATH --ws-push PATH
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { check, finish, freePort, sleep } from './lib.mjs';
import { children, client, exited, messages, redisCli, startNode, startRedis, token, until } from './push_peers.mjs';

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const routeBin = arg('--push-route');
const wsPushBin = arg('--ws-push');

async function route(args, input) {
  const p = spawn(routeBin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stdin.end(input);
  const code = await exited(p);
  return { code, records: out.split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}
const lines = (...objs) => objs.map((o) => JSON.stringify(o)).join('\n') + '\n';
const post = async (node, body) => (await fetch(node.api + '/push', { method: 'POST', body })).text();
const ids = (c) => messages(c).map((m) => m.id);
// Bytes received by the Redis server and not yet read (it is stopped): /proc/net/tcp's rx_queue
// of its established connections.
const redisBacklog = (port) => fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
  .filter((f) => f.length > 4 && f[3] === '01' && parseInt(f[1].split(':')[1], 16) === port)
  .reduce((n, f) => n + parseInt(f[4].split(':')[1], 16), 0);

try {
  const redisPort = await freePort();
  let redisProc = await startRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const a = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 'a', '--route-ttl', '900ms'], 'a');
  const small = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 's', '--history-size', '10',
    '--replay-on-login', '2', '--redis-prefix', 'small:'], 's');

  // 1. Offline through push-route, back with since: the missed ones, in order, once.
  const erin1 = client(a);
  await erin1.login(token('erin'));
  await until('erin routed', () => redisCli(redisPort, 'ZCARD', 'pipekit:user:{erin}:nodes') === '1');
  let r = await route(['--redis', redisUrl], lines({ user: 'erin', data: 1, id: 'e1' }));
  await until('erin gets e1', () => messages(erin1).length === 1);
  const seen = messages(erin1)[0];
  check('a routed message carries its stream id, the sender\'s id as ref', /^\d+-\d+$/.test(seen.id) && seen.ref === 'e1', JSON.stringify(seen));
  erin1.ws.close();
  await erin1.done;
  await until('erin unrouted', () => redisCli(redisPort, 'ZCARD', 'pipekit:user:{erin}:nodes') === '0');
  r = await route(['--redis', redisUrl], lines({ user: 'erin', data: 2, id: 'e2' }, { user: 'erin', data: 3, id: 'e3' }));
  check('offline erin reported twice, each with where it is stored', r.records.length === 2 &&
    r.records.every((x) => x.reason === 'offline' && /^\d+-\d+$/.test(x.history?.erin ?? '')), JSON.stringify(r.records));
  const erin2 = client(a);
  await erin2.login(token('erin'), seen.id);
  await until('erin gets the two she missed', () => messages(erin2).length >= 2);
  await sleep(200);  // nothing more may come: a duplicate would arrive now
  check('since: exactly the missed ones, in order, under the ids push-route reported',
    JSON.stringify(messages(erin2).map((m) => m.data)) === '[2,3]' &&
    JSON.stringify(ids(erin2)) === JSON.stringify(r.records.map((x) => x.history.erin)), JSON.stringify(erin2.messages));
  check('since: no gap when nothing was lost', !erin2.messages.some((m) => m.type === 'gap'), JSON.stringify(erin2.messages));
  erin2.ws.close();

  // 2. A node's own /push stores what no router stamped, once per user.
  await post(a, lines({ users: ['gus', 'hal'], data: 'direct', id: 'd1' }));
  check('/push stores an unstamped message for each user', redisCli(redisPort, 'XLEN', 'pipekit:user:{gus}:history') === '1' &&
    redisCli(redisPort, 'XLEN', 'pipekit:user:{hal}:history') === '1');
  const before = Number(redisCli(redisPort, 'XLEN', 'pipekit:user:{erin}:history'));
  const erin3 = client(a);
  await erin3.login(token('erin'));
  await route(['--redis', redisUrl], lines({ user: 'erin', data: 4 }));
  await until('erin3 gets 4', () => messages(erin3).length === 1);
  check('a stamped message is not stored again by the node', Number(redisCli(redisPort, 'XLEN', 'pipekit:user:{erin}:history')) === before + 1);
  erin3.ws.close();

  // 3. The seam under load: fred reconnects three times with since while 1500 messages flow.
  const total = 1500;
  let sent = 0;
  const publish = async () => {
    while (sent < total) {
      const batch = [];
      for (let k = 0; k < 10 && sent < total; k++) batch.push({ user: 'fred', data: ++sent });
      await post(a, lines(...batch));
      await sleep(2);
    }
  };
  let publisher;
  const got = [];
  let since;
  for (let round = 0; round < 4; round++) {
    const c = client(a);
    await c.login(token('fred'), since);
    if (round === 0) publisher = publish();  // fred is logged in: from here on nothing may be missed
    const want = round < 3 ? Math.min(total, got.length + 200) : total;
    await until(`fred round ${round} reaches ${want}`, () => got.length + messages(c).length >= want, 30000)
      .catch((e) => { throw new Error(`${e.message}: had ${got.length} + ${messages(c).length}, sent ${sent}, missing ${(() => { const all = new Set([...got, ...messages(c).map((m) => m.data)]); const miss = []; for (let v = 1; v <= sent; v++) if (!all.has(v)) miss.push(v); return JSON.stringify(miss); })()} (round ${round}, since ${since}, first here ${JSON.stringify(messages(c)[0])}, got tail ${got.slice(-3)})`); });
    if (round === 3) await publisher;
    if (round === 3) await until('fred gets the last one', () => messages(c).at(-1)?.data === total, 30000);
    c.ws.terminate();  // abrupt, mid-stream
    await c.done;
    const ms = messages(c);
    got.push(...ms.map((m) => m.data));
    if (ms.length) since = ms.at(-1).id;
    check(`fred round ${round}: no gap`, !c.messages.some((m) => m.type === 'gap'), JSON.stringify(c.messages.filter((m) => m.type === 'gap')));
  }
  const bad = got.findIndex((v, i) => v !== i + 1);
  check('the seam: every message exactly once, in order, across 4 connections', got.length === total && bad < 0,
    `${got.length} received; first wrong at ${bad}: ${JSON.stringify(got.slice(Math.max(0, bad - 3), bad + 3))}`);

  // 3b. The seam made certain: the messages are stored before the login's history read but
  // delivered while it runs (Redis stopped meanwhile, so both wait in its socket): they must come
  // once, from the history, not again as live ones.
  const seam = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 'seam', '--route-ttl', '60s'], 'seam');
  const kim1 = client(seam);
  await kim1.login(token('kim'));
  await post(seam, lines({ user: 'kim', data: 1 }));
  await until('kim gets 1', () => messages(kim1).length === 1);
  const kimSince = messages(kim1)[0].id;
  kim1.ws.close();
  await until('kim unrouted', () => redisCli(redisPort, 'ZCARD', 'pipekit:user:{kim}:nodes') === '0');
  const q0 = redisBacklog(redisPort);
  redisProc.kill('SIGSTOP');
  const posted = post(seam, lines({ user: 'kim', data: 2 }, { user: 'kim', data: 3 }));
  await until('the XADDs wait in Redis\'s socket', () => redisBacklog(redisPort) > q0);
  const q1 = redisBacklog(redisPort);
  const kim2 = client(seam);
  await kim2.opened;
  kim2.ws.send(JSON.stringify({ type: 'login', token: token('kim'), since: kimSince }));
  await kim2.next('login_ok');
  await until('the history read waits behind them', () => redisBacklog(redisPort) > q1);
  redisProc.kill('SIGCONT');
  await posted;
  await until('kim gets 2 and 3', () => messages(kim2).length >= 2);
  await post(seam, lines({ user: 'kim', data: 4 }));
  await until('kim gets 4', () => messages(kim2).some((m) => m.data === 4));
  check('the seam: stored before the read, delivered during it: once each, in order',
    JSON.stringify(messages(kim2).map((m) => m.data)) === '[2,3,4]', JSON.stringify(kim2.messages));
  kim2.ws.close();

  // 4. Trimmed past since: a gap, then what is left.
  await post(small, lines({ user: 'ida', data: 0 }));
  const first = redisCli(redisPort, 'XRANGE', 'small:user:{ida}:history', '-', '+', 'COUNT', '1').split('\n')[0];
  for (let k = 1; k <= 600; k += 50) await post(small, lines(...Array.from({ length: 50 }, (_, j) => ({ user: 'ida', data: k + j }))));
  const ida = client(small);
  await ida.login(token('ida'), first);
  await until('ida gets the rest up to 600', () => messages(ida).at(-1)?.data === 600, 10000);
  const gapAt = ida.messages.findIndex((m) => m.type === 'gap');
  check('trimmed: a gap comes first, before any message', gapAt >= 0 && gapAt < ida.messages.findIndex((m) => m.type === 'message'),
    JSON.stringify(ida.messages.slice(0, 3)));
  const idaData = messages(ida).map((m) => m.data);
  check('trimmed: what is left comes in order, ending at the last', idaData.length < 601 && idaData.every((v, i) => i === 0 || v === idaData[i - 1] + 1),
    `${idaData.length} ${idaData.slice(0, 3)}`);
  ida.ws.close();

  // 5. --replay-on-login 2: a login without since gets the last two.
  const ida2 = client(small);
  await ida2.login(token('ida'));
  await until('ida2 gets two', () => messages(ida2).length >= 2);
  await sleep(200);
  check('--replay-on-login 2: the last two, in order', JSON.stringify(messages(ida2).map((m) => m.data)) === '[599,600]',
    JSON.stringify(ida2.messages));
  ida2.ws.close();

  // 6. Redis away: since cannot be served: a gap, and live delivery goes on.
  redisProc.kill('SIGKILL');
  await exited(redisProc);
  await until('node a sees Redis down', async () => (await (await fetch(a.api + '/stats')).json()).redis === 'down');
  const jo = client(a);
  await jo.login(token('jo'), '1-0');
  await jo.next('gap');
  check('Redis down: login with since gets a gap', jo.messages.find((m) => m.type === 'gap')?.reason === 'history unavailable',
    JSON.stringify(jo.messages));
  const answer = await post(a, lines({ user: 'jo', data: 'live' }));
  await until('jo still gets live messages', () => messages(jo).length === 1);
  check('Redis down: the /push answer says nothing was stored', !answer.includes('history'), answer);
  jo.ws.close();
  redisProc = await startRedis(redisPort);
} catch (e) {
  check('no exception', false, e.stack);
}
finish();
