// lookupd with a real broker and a real client: nsq-broker registers with lookupd
// (--lookupd-tcp-address), an nsqjs Reader finds the broker only through lookupd's /lookup
// (lookupdHTTPAddresses) and gets the messages an nsqjs Writer publishes; channels appear as
// consumers subscribe, an #ephemeral channel goes with its consumer, topics and channels created
// and deleted on the broker follow, and a stopped broker leaves lookupd at once. Both daemons
// exit 0 on SIGTERM (the CLI test covers a killed peer). Then two lookupds with brokers
// registered with one each: a Reader given both consumes from all, and picks up a broker added later.
// Usage: node nsqjs_lookupd.mjs --lookupd PATH/TO/lookupd --broker PATH/TO/nsq-broker
import { spawn } from 'node:child_process';
import nsq from 'nsqjs';
import { check, finish, freePort, sleep, withTimeout } from './lib.mjs';

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];

const [lTcp, lHttp, bTcp, bHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
const lookupdUrl = `http://127.0.0.1:${lHttp}`;
const lookupd = spawn(arg('--lookupd'), ['--tcp-address', `127.0.0.1:${lTcp}`, '--http-address', `127.0.0.1:${lHttp}`, '-q'],
  { stdio: ['ignore', 'inherit', 'inherit'] });
let broker = null;
const exited = (p) => new Promise((resolve) => p.on('exit', (code, signal) => resolve(code ?? signal)));

async function get(path) {
  try {
    const r = await fetch(lookupdUrl + path);
    return { status: r.status, json: await r.json().catch(() => null) };
  } catch {
    return { status: 0, json: null };
  }
}
// Polls GET path until pred(answer) holds (10 s).
async function until(path, pred, what) {
  for (let i = 0; i < 200; i++) {
    const a = await get(path);
    if (pred(a)) return a;
    await sleep(50);
  }
  throw new Error(`timed out: ${what}`);
}

try {
  await until('/topics', (a) => a.status === 200, 'lookupd up');
  broker = spawn(arg('--broker'), ['--tcp-address', `127.0.0.1:${bTcp}`, '--http-address', `127.0.0.1:${bHttp}`,
    '--lookupd-tcp-address', `127.0.0.1:${lTcp}`, '-q'], { stdio: ['ignore', 'inherit', 'inherit'] });

  // The broker IDENTIFYs at once: /nodes shows it with its own ports.
  const nodes = await until('/nodes', (a) => a.json?.producers?.length === 1, 'broker in /nodes');
  const node = nodes.json.producers[0];
  check('the broker registers with its TCP and HTTP ports', node.tcp_port === bTcp && node.http_port === bHttp,
    JSON.stringify(node));
  check('and a broadcast address', node.broadcast_address === '127.0.0.1', JSON.stringify(node));

  // A topic made by publishing is registered; the Reader finds the broker through lookupd alone.
  const w = await withTimeout(new Promise((resolve, reject) => {
    const x = new nsq.Writer('127.0.0.1', bTcp);
    x.on('ready', () => resolve(x));
    x.on('error', reject);
    x.connect();
  }), 10000, 'writer');
  const publish = (topic, msg) => new Promise((res, rej) => w.publish(topic, msg, (e) => (e ? rej(e) : res())));
  await publish('lookup_events', 'first');
  const found = await until('/lookup?topic=lookup_events', (a) => a.status === 200 && a.json.producers.length === 1,
    'topic registered');
  check('/lookup names the broker', found.json.producers[0].tcp_port === bTcp, JSON.stringify(found.json));

  const got = [];
  const r = new nsq.Reader('lookup_events', 'push', { lookupdHTTPAddresses: [`127.0.0.1:${lHttp}`], lookupdPollInterval: 1 });
  r.on('message', (m) => { got.push(m.body.toString()); m.finish(); });
  r.on('error', (e) => console.log(`reader error: ${e.message}`));
  const connected = new Promise((resolve) => r.on('nsqd_connected', (host, port) => resolve(`${host}:${port}`)));
  r.connect();
  const to = await withTimeout(connected, 10000, 'reader connected through lookupd');
  check('the Reader connects to the broker lookupd named', to === `127.0.0.1:${bTcp}`, to);
  await publish('lookup_events', 'second');
  await withTimeout((async () => { while (!got.includes('second')) await sleep(20); })(), 10000, 'message through lookupd');
  check('the Reader gets what was published after it subscribed', got.includes('second'), JSON.stringify(got));
  const chans = await until('/channels?topic=lookup_events', (a) => a.json?.channels?.includes('push'), 'channel registered');
  check('the consumer\'s channel is registered', chans.json.channels.includes('push'));

  // An ephemeral channel is listed while its consumer is there, and goes with it.
  const e = new nsq.Reader('lookup_events', 'tail#ephemeral', { nsqdTCPAddresses: [`127.0.0.1:${bTcp}`] });
  e.on('message', (m) => m.finish());
  e.on('error', () => {});
  e.connect();
  await until('/channels?topic=lookup_events', (a) => a.json?.channels?.includes('tail#ephemeral'), 'ephemeral channel listed');
  check('an #ephemeral channel is listed while consumed', true);
  e.close();
  await until('/channels?topic=lookup_events', (a) => a.json && !a.json.channels.includes('tail#ephemeral'),
    'ephemeral channel gone');
  check('and is gone with its consumer', true);

  r.close();

  // Created and deleted on the broker (nsqd's HTTP API): lookupd follows.
  const brokerPost = async (path) => (await fetch(`http://127.0.0.1:${bHttp}${path}`, { method: 'POST' })).status;
  check('broker /channel/create', await brokerPost('/topic/create?topic=lookup_events') === 200 &&
    await brokerPost('/channel/create?topic=lookup_events&channel=extra') === 200);
  await until('/channels?topic=lookup_events', (a) => a.json?.channels?.includes('extra'), 'created channel listed');
  check('a channel created on the broker is listed', true);
  check('broker /channel/delete', await brokerPost('/channel/delete?topic=lookup_events&channel=extra') === 200);
  await until('/channels?topic=lookup_events', (a) => a.json && !a.json.channels.includes('extra'), 'deleted channel gone');
  check('a channel deleted on the broker is gone', true);
  await publish('doomed', 'x');
  await until('/topics', (a) => a.json?.topics?.includes('doomed'), 'second topic listed');
  check('broker /topic/delete', await brokerPost('/topic/delete?topic=doomed') === 200);
  const left = await until('/topics', (a) => a.json && !a.json.topics.includes('doomed'), 'deleted topic gone');
  check('a topic deleted on the broker is gone, the other stays', left.json.topics.includes('lookup_events'),
    JSON.stringify(left.json));
  w.close();

  // A broker that stops leaves lookupd at once: its topics are no longer listed.
  broker.kill('SIGTERM');
  const brokerExit = await exited(broker);
  broker = null;
  check('nsq-broker exits 0 on SIGTERM', brokerExit === 0, `exit ${brokerExit}`);
  const gone = await until('/lookup?topic=lookup_events', (a) => a.status === 404, 'stopped broker removed');
  check('a stopped broker\'s topic is gone from /lookup', gone.json?.message === 'TOPIC_NOT_FOUND', JSON.stringify(gone.json));
  const empty = await get('/nodes');
  check('and from /nodes', empty.json?.producers?.length === 0, JSON.stringify(empty.json));
  const none = await get('/topics');
  check('and from /topics', none.json?.topics?.length === 0, JSON.stringify(none.json));
} catch (err) {
  check('no exception', false, err.stack);
} finally {
  if (broker) { broker.kill('SIGTERM'); await exited(broker); }
  lookupd.kill('SIGTERM');
  const code = await withTimeout(exited(lookupd), 10000, 'lookupd exit').catch(() => 'timeout');
  check('lookupd exits 0 on SIGTERM', code === 0, `exit ${code}`);
}

// Two lookupds (they do not talk to each other, as in NSQ) and brokers registered with one each:
// a Reader given both lookupds consumes from every broker, and picks up a broker added later
// within its poll interval.
const daemons = [];
try {
  const start = async (path, args) => {
    const p = spawn(path, [...args, '-q'], { stdio: ['ignore', 'inherit', 'inherit'] });
    daemons.push(p);
    return p;
  };
  const lookupds = [];
  for (let i = 0; i < 2; i++) {
    const [t, h] = [await freePort(), await freePort()];
    await start(arg('--lookupd'), ['--tcp-address', `127.0.0.1:${t}`, '--http-address', `127.0.0.1:${h}`]);
    lookupds.push({ tcp: t, http: h });
  }
  const brokers = [];
  const startBroker = async (lookupdIndex) => {
    const [t, h] = [await freePort(), await freePort()];
    await start(arg('--broker'), ['--tcp-address', `127.0.0.1:${t}`, '--http-address', `127.0.0.1:${h}`,
      '--lookupd-tcp-address', `127.0.0.1:${lookupds[lookupdIndex].tcp}`]);
    brokers.push({ tcp: t, http: h });
    return brokers[brokers.length - 1];
  };
  const post = async (b, path, body = '') => {
    for (let i = 0; i < 200; i++) {
      try {
        return (await fetch(`http://127.0.0.1:${b.http}${path}`, { method: 'POST', body })).status;
      } catch { await sleep(50); }  // not listening yet
    }
    return 0;
  };
  const listed = (l, topic, n) => (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        const a = await (await fetch(`http://127.0.0.1:${l.http}/lookup?topic=${topic}`)).json();
        if (a.producers?.length === n) return;
      } catch { /* not up yet */ }
      await sleep(50);
    }
    throw new Error(`timed out: ${topic} with ${n} producers`);
  })();
  const b1 = await startBroker(0);
  const b2 = await startBroker(1);
  // nsqd makes a channel only in a topic that exists.
  for (const b of [b1, b2]) await post(b, '/topic/create?topic=fanin');
  check('fan-in: broker 1 channel', await post(b1, '/channel/create?topic=fanin&channel=all') === 200);
  check('fan-in: broker 2 channel', await post(b2, '/channel/create?topic=fanin&channel=all') === 200);
  await listed(lookupds[0], 'fanin', 1);
  await listed(lookupds[1], 'fanin', 1);
  const got = new Set();
  const r = new nsq.Reader('fanin', 'all', {
    lookupdHTTPAddresses: lookupds.map((l) => `127.0.0.1:${l.http}`), lookupdPollInterval: 1 });
  r.on('message', (m) => { got.add(m.body.toString()); m.finish(); });
  r.on('error', () => {});
  r.connect();
  check('fan-in: publish to broker 1', await post(b1, '/pub?topic=fanin', 'from-1') === 200);
  check('fan-in: publish to broker 2', await post(b2, '/pub?topic=fanin', 'from-2') === 200);
  await withTimeout((async () => { while (!(got.has('from-1') && got.has('from-2'))) await sleep(20); })(), 10000,
    'messages from both brokers');
  check('a Reader with two lookupds consumes from the brokers of both', true);
  const b3 = await startBroker(0);
  await post(b3, '/topic/create?topic=fanin');
  check('fan-in: broker 3 channel', await post(b3, '/channel/create?topic=fanin&channel=all') === 200);
  check('fan-in: publish to broker 3', await post(b3, '/pub?topic=fanin', 'from-3') === 200);
  await listed(lookupds[0], 'fanin', 2);
  const t0 = Date.now();
  await withTimeout((async () => { while (!got.has('from-3')) await sleep(20); })(), 10000, 'broker added later');
  check('a broker added later is picked up within the poll interval', Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  r.close();
} catch (err) {
  check('fan-in: no exception', false, err.stack);
} finally {
  for (const p of daemons.reverse()) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    p.kill('SIGTERM');
    await withTimeout(exited(p), 10000, 'daemon exit').catch(() => p.kill('SIGKILL'));
  }
}
finish();
