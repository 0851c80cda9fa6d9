// Load for lookupd's TCP side (bench/lookupd/run.sh):
//   node brokers.mjs hold PORT PRODUCERS TOPICS
//     PRODUCERS connections IDENTIFY and REGISTER TOPICS topics (topic_0..) with a channel each,
//     print "ready", then hold the connections open until stdin closes.
//   node brokers.mjs churn PORT SECONDS WINDOW
//     one identified connection: PING for SECONDS, then REGISTER/UNREGISTER pairs (topic and
//     channel) for SECONDS, each with WINDOW commands in flight; prints JSON {ping_per_s, churn_per_s}
//     (churn counts commands: a REGISTER and an UNREGISTER are two).
import net from 'node:net';

const [mode, portText, a, b] = process.argv.slice(2);
const port = Number(portText);

function connect(n) {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  const waiting = [];
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const size = buf.readUInt32BE(0);
      const frame = buf.subarray(4, 4 + size).toString();
      buf = buf.subarray(4 + size);
      const w = waiting.shift();
      if (w) w(frame);
    }
  });
  sock.on('error', (e) => { console.error(`broker ${n}: ${e.message}`); process.exit(1); });
  const answer = () => new Promise((resolve) => waiting.push(resolve));
  const identify = async () => {
    const body = Buffer.from(JSON.stringify({ broadcast_address: `broker${n}.bench`, hostname: `broker${n}`,
      tcp_port: 4150 + 10 * n, http_port: 4151 + 10 * n, version: '1.3.0' }));
    const size = Buffer.alloc(4);
    size.writeUInt32BE(body.length);
    sock.write(Buffer.concat([Buffer.from('  V1IDENTIFY\n'), size, body]));
    await answer();
  };
  // Sends lines, WINDOW at a time, waiting for every answer (each must be OK).
  const run = async (lines) => {
    sock.write(lines.join(''));
    const answers = await Promise.all(lines.map(() => answer()));
    for (const x of answers) if (x !== 'OK') throw new Error(`answer ${x}`);
  };
  return { sock, identify, run };
}

if (mode === 'hold') {
  const producers = Number(a), topics = Number(b);
  const conns = [];
  for (let n = 0; n < producers; n++) {
    const c = connect(n);
    await c.identify();
    const lines = [];
    for (let t = 0; t < topics; t++) lines.push(`REGISTER topic_${t}\n`, `REGISTER topic_${t} channel_${n}\n`);
    await c.run(lines);
    conns.push(c);
  }
  console.log('ready');
  process.stdin.resume();
  process.stdin.on('end', () => { for (const c of conns) c.sock.destroy(); process.exit(0); });
} else if (mode === 'churn') {
  const seconds = Number(a), window = Number(b);
  const c = connect(99);
  await c.identify();
  const measure = async (make) => {
    let count = 0;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    while (performance.now() < end) {
      const lines = make(count);
      await c.run(lines);
      count += lines.length;
    }
    return count / ((performance.now() - t0) / 1000);
  };
  const ping = await measure(() => Array(window).fill('PING\n'));
  const churn = await measure((i) => {
    const lines = [];
    for (let k = 0; k < window / 2; k++) {
      const t = `churn_${(i / 2 + k) % 1000}`;
      lines.push(`REGISTER ${t} ch\n`, `UNREGISTER ${t} ch\n`);
    }
    return lines;
  });
  const serial = await measure((i) => [`REGISTER churn_${i % 1000} ch\n`]);
  console.log(JSON.stringify({ ping_per_s: Math.round(ping), churn_per_s: Math.round(churn), serial_register_per_s: Math.round(serial) }));
  c.sock.destroy();
  process.exit(0);
}
