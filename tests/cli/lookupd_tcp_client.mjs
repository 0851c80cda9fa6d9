// A broker's side of lookupd's TCP protocol, driven line by line from stdin (for lookupd_test.sh):
//   magic               send "  V1"
//   raw <json string>   send these bytes (the string's code points as bytes)
//   identify <json>     send IDENTIFY with this body, print the answer
//   cmd <text>          send text + "\n", print the answer
//   read                print the next answer
//   close               close the connection and exit
// An answer is one line: the frame's data, or "<closed>" when lookupd closed the connection.
// Usage: node lookupd_tcp_client.mjs PORT
import net from 'node:net';
import readline from 'node:readline';

const sock = net.connect(Number(process.argv[2]), '127.0.0.1');
let buf = Buffer.alloc(0);
let closed = false;
const waiting = [];
const frames = [];

function pump() {
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
    const n = buf.readUInt32BE(0);
    frames.push(buf.subarray(4, 4 + n).toString('utf8'));
    buf = buf.subarray(4 + n);
  }
  while (waiting.length && (frames.length || closed)) waiting.shift()(frames.length ? frames.shift() : '<closed>');
}
sock.on('data', (d) => { buf = Buffer.concat([buf, d]); pump(); });
sock.on('close', () => { closed = true; pump(); });
sock.on('error', () => { closed = true; pump(); });
const answer = () => new Promise((resolve) => { waiting.push(resolve); pump(); });
const send = (b) => { if (!closed) sock.write(b); };

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const sp = line.indexOf(' ');
  const op = sp < 0 ? line : line.slice(0, sp);
  const arg = sp < 0 ? '' : line.slice(sp + 1);
  if (op === 'magic') send('  V1');
  else if (op === 'raw') send(Buffer.from(JSON.parse(arg), 'latin1'));
  else if (op === 'identify') {
    const body = Buffer.from(arg);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(body.length);
    send(Buffer.concat([Buffer.from('IDENTIFY\n'), size, body]));
    console.log(await answer());
  } else if (op === 'cmd') {
    send(arg + '\n');
    console.log(await answer());
  } else if (op === 'read') console.log(await answer());
  else if (op === 'close') break;
}
sock.destroy();
process.exit(0);
