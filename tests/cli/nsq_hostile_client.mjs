// Hostile NSQ V2 clients for nsq_broker_hostile_test.sh. Each mode prints one result line.
//   flood PORT HEARTBEAT_MS      IDENTIFY, SUB, then bad FINs (each answered with an error frame) as fast
//                                as the socket takes them, never reading: "closed MS" when the
//                                broker ends the connection, "open" after 20 s
//   slow PORT HEARTBEAT_MS GAP   IDENTIFY, then a PUB whose 100-byte body comes one byte per GAP ms:
//                                "closed MS" (from the PUB's first byte), "open" after 15 s
//   pub PORT TOPIC               PUB one message: "<answer> MS"
//   first PORT                   send the magic, print the first frame (or "<closed>") within 1.5 s
//   bomb PORT MEGABYTES          IDENTIFY with deflate, then a raw deflate stream of MEGABYTES of
//                                NOP lines (a few tens of KiB on the wire); stays connected, not
//                                reading, until stdin closes; prints "sent BYTES"
import net from 'node:net';
import zlib from 'node:zlib';

const [mode, portArg, a3, a4] = process.argv.slice(2);
const port = Number(portArg);
const sock = net.connect(port, '127.0.0.1');
sock.setNoDelay(true);
let buf = Buffer.alloc(0);
const frames = [];
let closed = false;
const t0 = Date.now();
const done = (line) => { console.log(line); process.exit(0); };
const frame = () => new Promise((resolve) => {
  const poll = () => {
    if (frames.length) return resolve(frames.shift());
    if (closed) return resolve('<closed>');
    setTimeout(poll, 5);
  };
  poll();
});
sock.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 8 && buf.length >= 4 + buf.readUInt32BE(0)) {
    const n = buf.readUInt32BE(0);
    frames.push(buf.subarray(8, 4 + n).toString('latin1'));
    buf = buf.subarray(4 + n);
  }
});
sock.on('close', () => { closed = true; });
sock.on('error', () => { closed = true; });
const sized = (body) => { const b = Buffer.alloc(4); b.writeUInt32BE(body.length); return Buffer.concat([b, body]); };
const identify = (o) => Buffer.concat([Buffer.from('IDENTIFY\n'), sized(Buffer.from(JSON.stringify(o)))]);
await new Promise((r) => sock.once('connect', r));

if (mode === 'first') {
  sock.write('  V2');
  setTimeout(() => done('<timeout>'), 1500);
  done(await frame());
} else if (mode === 'pub') {
  sock.write(Buffer.concat([Buffer.from(`  V2PUB ${a3}\n`), sized(Buffer.from('hello'))]));
  const f = await frame();
  done(`${f} ${Date.now() - t0}`);
} else if (mode === 'flood') {
  sock.write(Buffer.concat([Buffer.from('  V2'), identify({ heartbeat_interval: Number(a3) }), Buffer.from('SUB flood c\n')]));
  await frame();
  await frame();
  sock.pause();  // never read again
  const chunk = Buffer.from('FIN 0000000000000000\n'.repeat(3000));
  const start = Date.now();
  setTimeout(() => done('open'), 20000);
  const write = () => {
    while (!closed) if (!sock.write(chunk)) return sock.once('drain', write);
  };
  sock.on('close', () => done(`closed ${Date.now() - start}`));
  write();
} else if (mode === 'slow') {
  sock.write(Buffer.concat([Buffer.from('  V2'), identify({ heartbeat_interval: Number(a3) })]));
  await frame();
  const gap = Number(a4);
  const start = Date.now();
  sock.on('close', () => done(`closed ${Date.now() - start}`));
  setTimeout(() => done('open'), 15000);
  const body = sized(Buffer.alloc(100, 'x'));
  const bytes = Buffer.concat([Buffer.from('PUB slow\n'), body]);
  for (let i = 0; i < bytes.length && !closed; i++) {
    sock.write(bytes.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, gap));
  }
} else if (mode === 'bomb') {
  sock.write(Buffer.concat([Buffer.from('  V2'), identify({ feature_negotiation: true, deflate: true, deflate_level: 6 })]));
  await frame();  // the IDENTIFY answer (plain); what follows is compressed and never read
  sock.pause();
  const plain = Buffer.from('NOP\n'.repeat(Number(a3) * 1024 * 1024 / 4));
  const bomb = zlib.deflateRawSync(plain, { level: 9 });
  sock.write(bomb);
  console.log(`sent ${bomb.length}`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  sock.on('close', () => { console.log('closed'); process.exit(0); });
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
