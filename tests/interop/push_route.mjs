// push-route with real peers: Debian's redis-server, two ws-push nodes (pipekit's, the routes'
// writers) and clients from npm's `ws`. Covers delivery to every connection of a user on both
// nodes and to no one else, multi-user and broadcast messages, offline users reported, JSON
// Pointer input (an ethcall log record), a node killed -9 with its routes still live (reported
// node_unreachable, a user also on the other node still delivered), members of the wrong type
// reported, Redis stopped (every message reported redis_unavailable, routing back by itself), a
// wrong push token, history (with a broadcast read in the same batch as a user's message),
// back-pressure (20,000 messages with --max-pending 50: each one delivered or reported, none twice),
// "id":null, lines nested too deep, and a stand-in node answering with members of the wrong type.
// Usage: node push_route.mjs --push-route PATH --ws-push PATH
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { check, finish, freePort } from './lib.mjs';
import { children, client, dir, exited, messages, redisCli, startNode, startRedis, token, until } from './push_peers.mjs';

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const routeBin = arg('--push-route');
const wsPushBin = arg('--ws-push');

// Runs push-route over `input`; its records, stderr and exit status.
async function route(args, input, ms = 30000) {
  const p = spawn(routeBin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(p);
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  p.stdin.on('error', () => {});
  p.stdin.end(input);
  const code = await Promise.race([exited(p), new Promise((r) => setTimeout(() => { p.kill('SIGKILL'); r('timeout'); }, ms))]);
  const records = out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return { unparsable: l }; } });
  return { code, records, err };
}
const lines = (...objs) => objs.map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join('\n') + '\n';

try {
  const redisPort = await freePort();
  let redisProc = await startRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const a = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 'a', '--route-ttl', '900ms', '--history-size', '0'], 'a');
  const b = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 'b', '--route-ttl', '900ms', '--history-size', '0'], 'b');
  // The nodes keep no history of their own (push_history.mjs tests that): what they deliver is what
  // push-route sent. push-route's history is on by default; the first parts test routing alone.
  const base = ['--redis', redisUrl, '--timeout', '2s', '--history-size', '0'];

  const alice1 = client(a), alice2 = client(b), bob = client(b);
  await alice1.login(token('alice'));
  await alice2.login(token('alice'));
  await bob.login(token('bob'));
  const zrange = (user) => redisCli(redisPort, 'ZRANGE', `pipekit:user:{${user}}:nodes`, '0', '-1').split('\n').filter(Boolean).sort().join();
  await until('routes in Redis', () => zrange('alice') === 'a,b' && zrange('bob') === 'b');

  // Delivery by user, by users, broadcast; offline reported; bad lines reported.
  const delivered = path.join(dir, 'delivered.jsonl');
  let r = await route([...base, '--delivered', delivered, '--stats'], lines(
    { user: 'alice', data: { n: 1 }, id: 'm1' },
    { user: 'bob', data: { n: 2 } },
    { user: 'carol', data: { n: 3 }, id: 'm3' },
    { users: ['alice', 'carol'], data: { n: 4 } },
    { broadcast: true, data: { n: 5 } },
    'not json',
    { user: 'alice' },
  ));
  check('bad input lines: exit 65', r.code === 65, `${r.code} ${r.err}`);
  await until('alice gets 1, 4, 5 on both nodes', () => messages(alice1).length === 3 && messages(alice2).length === 3);
  await until('bob gets 2 and 5', () => messages(bob).length === 2);
  check('alice: messages in order with ids', JSON.stringify(messages(alice1)) ===
    '[{"type":"message","id":"m1","data":{"n":1}},{"type":"message","data":{"n":4}},{"type":"message","data":{"n":5}}]',
    JSON.stringify(messages(alice1)));
  check('alice on node b gets the same', JSON.stringify(messages(alice2)) === JSON.stringify(messages(alice1)));
  check('bob gets his and the broadcast only', messages(bob).map((m) => m.data.n).join() === '2,5', JSON.stringify(messages(bob)));
  const byLine = Object.fromEntries(r.records.map((x) => [x.line, x]));
  check('offline user reported with the original message', byLine[3]?.reason === 'offline' && byLine[3]?.users?.join() === 'carol' &&
    byLine[3]?.id === 'm3' && byLine[3]?.message?.data?.n === 3 && byLine[3]?.source === 'stdin', JSON.stringify(byLine[3]));
  check('multi-user: only the offline one reported', byLine[4]?.reason === 'offline' && byLine[4]?.users?.join() === 'carol', JSON.stringify(byLine[4]));
  check('not JSON: invalid_json with the text', byLine[6]?.reason === 'invalid_json' && byLine[6]?.message === 'not json', JSON.stringify(byLine[6]));
  check('no data: invalid_message', byLine[7]?.reason === 'invalid_message', JSON.stringify(byLine[7]));
  check('nothing else reported', r.records.length === 4, JSON.stringify(r.records));
  const dl = fs.readFileSync(delivered, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  check('--delivered: one record per delivered message', dl.map((x) => x.line).sort().join() === '1,2,5' &&
    dl.find((x) => x.line === 1)?.connections === 2, JSON.stringify(dl));
  check('--stats on stderr', /stats: read=7 delivered=3 undelivered=2/.test(r.err), r.err);

  // Members of the wrong type are reported lines, not fatal (a "broadcast":1 made push-route exit 70).
  r = await route(base, lines({ broadcast: 1, data: 1 }, { user: 'bob', broadcast: 'yes', data: 2 }, { user: 'bob', data: 3 }));
  check('"broadcast" not a boolean: invalid_message, exit 65', r.code === 65 && r.records.length === 2 &&
    r.records.every((x) => x.reason === 'invalid_message' && /broadcast/.test(x.error)), `${r.code} ${JSON.stringify(r.records)} ${r.err}`);
  await until('the line after them is delivered', () => messages(bob).some((m) => m.data === 3));
  check('the rejected lines reach no one', !messages(bob).some((m) => m.data === 1 || m.data === 2), JSON.stringify(messages(bob)));

  // "id":null is no id, whichever way the line is read: plainly, or as a tree (a name twice in data).
  r = await route(base, lines({ user: 'bob', data: 'id null', id: null }, '{"user":"bob","data":{"k":1,"k":"id null"},"id":null}'));
  await until('both id:null lines delivered', () => messages(bob).filter((m) => m.data === 'id null' || m.data?.k === 'id null').length === 2);
  check('"id":null: no id in either message', r.code === 0 &&
    messages(bob).filter((m) => m.data === 'id null' || m.data?.k === 'id null').every((m) => !('id' in m)), JSON.stringify(messages(bob)));

  // Nested 100,000 deep (200 kB): push-route ended on a stack overflow writing its record (read
  // plainly, for an offline user) or dumping its data (read as a tree); reported now, and routing goes on.
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  r = await route(base, `{"user":"carol","data":${deep}}\n{"user":"carol","data":{"k":1,"k":${deep}}}\n` + lines({ user: 'bob', data: 'after deep' }));
  check('nested too deep: invalid_message, exit 65', r.code === 65 && r.records.length === 2 &&
    r.records.every((x) => x.reason === 'invalid_message' && /deeper than 128/.test(x.error)), `${r.code} ${JSON.stringify(r.records).slice(0, 500)} ${r.err.slice(0, 300)}`);
  await until('the line after them is delivered', () => messages(bob).some((m) => m.data === 'after deep'));

  // A node written by another hand (a stand-in HTTP server: ws-push never writes these) answering
  // with members of the wrong type: push-route read them with value(), which threw out of the
  // answer's handler (exit 70, the messages in flight unreported).
  const fakePort = await freePort();
  const fake = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const answers = body.split('\n').filter(Boolean).map((l, i) => (JSON.parse(l).data === 'refused'
        ? `{"line":${i + 1},"error":"no","message":5}` : `{"line":${i + 1},"delivered":"1"}`));
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(answers.join('\n') + '\n');
    });
  });
  await new Promise((res) => fake.listen(fakePort, '127.0.0.1', res));
  redisCli(redisPort, 'SET', 'pipekit:node:fake', `127.0.0.1:${fakePort}`);
  redisCli(redisPort, 'ZADD', 'pipekit:user:{fay}:nodes', String(Date.now() + 600000), 'fake');
  r = await route(base, lines({ user: 'fay', data: 'refused' }, { user: 'fay', data: 'taken' }));
  fake.close();
  check('a node\'s answers of the wrong type: the refusal reported node_error, the other taken as delivered',
    r.code === 0 && r.records.length === 1 && r.records[0].reason === 'node_error' && r.records[0].line === 1,
    `${r.code} ${JSON.stringify(r.records)} ${r.err.slice(0, 300)}`);

  // JSON Pointers: an ethcall Transfer record inside an nsq-tail envelope, a checksummed address.
  const addr = '0xAbCdEf0123456789aBcDeF0123456789AbCdEf01';
  const carl = client(a);
  await carl.login(token(addr.toLowerCase()));
  await until('route of the address', () => zrange(addr.toLowerCase()) === 'a');
  const transfer = { topic: 'transfers', body: { event: 'Transfer', args: { from: '0x01', to: addr, value: '7' }, tx_hash: '0xfeed' } };
  r = await route([...base, '--user-pointer', '/body/args/to', '--data-pointer', '/body', '--id-pointer', '/body/tx_hash',
    '--user-case', 'lower'], lines(transfer, { body: {} }));
  await until('the transfer reaches the lower-case login', () => messages(carl).length === 1);
  check('data is the pointer\'s value, id from its pointer', messages(carl)[0]?.data?.args?.value === '7' && messages(carl)[0]?.id === '0xfeed',
    JSON.stringify(messages(carl)));
  check('no user at the pointer: reported, exit 65', r.code === 65 && r.records.length === 1 && r.records[0].reason === 'invalid_message' &&
    /\/body\/args\/to/.test(r.records[0].error), JSON.stringify(r.records));
  r = await route([...base, '--user-pointer', '/body/args/to'], lines(transfer));
  check('--user-case exact: the checksummed address is offline', r.code === 0 && r.records[0]?.reason === 'offline', JSON.stringify(r.records));

  // A wrong push token: node_error, not delivered.
  const tokenFile = path.join(dir, 'push-token');
  fs.writeFileSync(tokenFile, 'right-token\n');
  const c = await startNode(wsPushBin, ['--redis', redisUrl, '--node-id', 'c', '--route-ttl', '900ms', '--history-size', '0', '--push-token-file', tokenFile], 'c');
  const dora = client(c);
  await dora.login(token('dora'));
  await until('dora routed', () => zrange('dora') === 'c');
  fs.writeFileSync(path.join(dir, 'wrong-token'), 'wrong\n');
  r = await route([...base, '--push-token-file', path.join(dir, 'wrong-token')], lines({ user: 'dora', data: 1 }));
  check('wrong push token: node_error', r.code === 0 && r.records[0]?.reason === 'node_error' && /401/.test(r.records[0]?.error),
    `${r.code} ${JSON.stringify(r.records)} ${r.err.slice(0, 500)}`);
  r = await route([...base, '--push-token-file', tokenFile], lines({ user: 'dora', data: 2 }));
  await until('with the token, delivered', () => messages(dora).length === 1);
  check('with the token: nothing reported', r.code === 0 && r.records.length === 0, JSON.stringify(r.records));

  // History: stored once per user before forwarding; the stream id is the message id.
  r = await route(['--redis', redisUrl, '--timeout', '2s'], lines({ users: ['alice', 'erin'], data: { n: 'h' }, id: 'h1' }));
  await until('alice gets the stored message', () => messages(alice1).at(-1)?.data?.n === 'h');
  const got1 = messages(alice1).at(-1);
  check('history: the client sees the stream id', /^\d+-\d+$/.test(got1.id), JSON.stringify(got1));
  check('history: offline erin reported with where it is stored', r.records.length === 1 && r.records[0].users?.join() === 'erin' &&
    /^\d+-\d+$/.test(r.records[0].history?.erin ?? ''), JSON.stringify(r.records));
  const stream = redisCli(redisPort, 'XRANGE', 'pipekit:user:{erin}:history', '-', '+');
  check('history: erin\'s stream holds it once, with its ref', stream.split('\n').filter((l) => l === 'd').length === 1 &&
    stream.includes('{"n":"h"}') && stream.includes('"h1"'), stream);
  const ttl = Number(redisCli(redisPort, 'PTTL', 'pipekit:user:{erin}:history'));
  check('history: the stream expires (--history-ttl)', ttl > 0 && ttl <= 24 * 3600 * 1000, String(ttl));
  r = await route(['--redis', redisUrl, '--history-size', '3'], lines(...Array.from({ length: 250 }, (_, n) => ({ user: 'fred', data: n }))));
  const flen = Number(redisCli(redisPort, 'XLEN', 'pipekit:user:{fred}:history'));
  // MAXLEN ~ trims whole stream nodes (100 entries): about, not exactly, --history-size.
  check('history: trimmed to about --history-size', flen >= 3 && flen < 250, String(flen));
  // A broadcast read in the same batch as a user's message, with history on: delivered, not
  // reported offline (the live nodes are the broadcast look-up's reply, not the last history one's).
  const aliceBefore = messages(alice1).length;
  r = await route(['--redis', redisUrl, '--timeout', '2s', '--push-token-file', tokenFile],  // node c wants it
    lines({ user: 'alice', data: { n: 'hb1' } }, { broadcast: true, data: { n: 'hb2' } }));
  check('history: a broadcast beside a user message is not reported', r.code === 0 && r.records.length === 0, JSON.stringify(r.records));
  await until('alice gets the broadcast beside her message', () => messages(alice1).slice(aliceBefore).some((m) => m.data?.n === 'hb2'));

  // Back-pressure: 20,000 messages, 50 in flight at most: each delivered or reported, once.
  const many = [];
  for (let i = 0; i < 20000; i++) many.push(JSON.stringify({ user: i % 2 ? 'bob' : 'nobody', data: i, id: `x${i}` }));
  const bobBefore = messages(bob).length;
  const dl2 = path.join(dir, 'delivered2.jsonl');
  r = await route([...base, '--max-pending', '50', '--batch-size', '64', '--delivered', dl2], many.join('\n') + '\n', 60000);
  const dl2lines = fs.readFileSync(dl2, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).id);
  const reported = r.records.map((x) => x.id);
  const all = new Set([...dl2lines, ...reported]);
  check('20,000: exit 0', r.code === 0, `${r.code} ${r.err.slice(0, 300)}`);
  check('20,000: delivered + reported = sent, none twice', dl2lines.length + reported.length === 20000 && all.size === 20000,
    `${dl2lines.length} + ${reported.length}, ${all.size} distinct`);
  check('20,000: the offline half reported', reported.length === 10000 && r.records.every((x) => x.reason === 'offline'));
  check('20,000: every record names its input, after the first batch too', r.records.every((x) => x.source === 'stdin'),
    JSON.stringify(r.records.find((x) => x.source !== 'stdin')));
  await until('bob got his 10,000 in order', () => messages(bob).length === bobBefore + 10000, 20000);
  const got = messages(bob).slice(bobBefore).map((m) => m.data);
  const disorder = got.findIndex((v, i) => i > 0 && !(v > got[i - 1]));
  check('bob: in input order', disorder < 0, `at ${disorder}: ${JSON.stringify(got.slice(Math.max(0, disorder - 3), disorder + 3))}`);

  // Node b killed -9 with its routes live: bob (only on b) is node_unreachable; alice (a and b) still delivered.
  b.p.kill('SIGKILL');
  await exited(b.p);
  const a1 = messages(alice1).length;
  r = await route(['--redis', redisUrl, '--timeout', '1s', '--history-size', '0'], lines({ user: 'bob', data: 'dead', id: 'd1' }, { user: 'alice', data: 'alive', id: 'd2' }));
  check('a dead node: its user reported node_unreachable', r.records.length === 1 && r.records[0].reason === 'node_unreachable' &&
    r.records[0].users?.join() === 'bob' && r.records[0].id === 'd1', `${r.code} ${JSON.stringify(r.records)} ${r.err}`);
  await until('alice still gets it on node a', () => messages(alice1).length === a1 + 1);

  // Redis stopped: every message reported redis_unavailable, in bounded time; back: routing resumes.
  redisProc.kill('SIGKILL');
  await exited(redisProc);
  const t0 = Date.now();
  r = await route([...base], lines({ user: 'alice', data: 'r1' }, { users: ['alice', 'x'], data: 'r2' }, { broadcast: true, data: 'r3' }));
  check('Redis down: all reported redis_unavailable', r.records.length === 3 && r.records.every((x) => x.reason === 'redis_unavailable'),
    JSON.stringify(r.records));
  check('Redis down: within the connect timeout', Date.now() - t0 < 10000, `${Date.now() - t0} ms`);
  // A router started while Redis is down keeps running and resumes once it is back.
  const p = spawn(routeBin, [...base], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stdin.write(lines({ user: 'alice', data: 'while down' }));
  await until('reported while down', () => out.includes('redis_unavailable'));
  redisProc = await startRedis(redisPort);
  await until('node a re-registers alice', () => zrange('alice').includes('a'), 10000);
  const a2 = messages(alice1).length;
  await until('routing resumes', async () => {
    p.stdin.write(lines({ user: 'alice', data: 'back' }));
    await new Promise((res) => setTimeout(res, 200));
    return messages(alice1).length > a2;
  }, 15000);
  check('routing resumed after Redis came back', messages(alice1).slice(a2).every((m) => m.data === 'back'));
  p.stdin.end();
  check('push-route ends at end of input', (await Promise.race([exited(p), new Promise((res) => setTimeout(() => res('timeout'), 10000))])) === 0);

  // Flags and files.
  r = await route([...base, path.join(dir, 'missing.jsonl')], '');
  check('missing input file: 66', r.code === 66 && /missing\.jsonl/.test(r.err), `${r.code} ${r.err}`);
  r = await route([...base, '--user-pointer', 'args/to'], '');
  check('bad pointer: 64', r.code === 64 && /--user-pointer/.test(r.err), `${r.code} ${r.err}`);
  r = await route([...base, '--data-pointer', '/x'], '');
  check('--data-pointer without --user-pointer: 64', r.code === 64, `${r.code} ${r.err}`);
} catch (e) {
  check('no exception', false, e.stack);
}
finish();
