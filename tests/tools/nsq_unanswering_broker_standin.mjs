// A stand-in for an nsqd that takes commands and never answers them, while it keeps sending
// heartbeats: a fault neither nsqd nor nsq-broker produces on demand (a frozen broker is silent,
// this one is not). It speaks just enough of NSQ's TCP protocol V2: the magic, IDENTIFY answered
// with nsqd's JSON, a heartbeat every --heartbeat-ms (default 200), and PUB, MPUB, DPUB, NOP
// read and never answered. Each command is appended to --log FILE as one line ("MPUB t 200").
// Usage: node nsq_unanswering_broker_standin.mjs --port N --log FILE [--heartbeat-ms N]
import net from 'node:net';
import fs from 'node:fs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const log = arg('log');
const heartbeatMs = Number(arg('heartbeat-ms', '200'));

const frame = (type, text) => {
  const data = Buffer.from(text);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(4 + data.length, 0);
  head.writeUInt32BE(type, 4);
  return Buffer.concat([head, data]);
};
const identify = JSON.stringify({
  max_rdy_count: 2500, version: '1.3.0', max_msg_timeout: 900000, msg_timeout: 60000, tls_v1: false,
  deflate: false, deflate_level: 6, max_deflate_level: 6, snappy: false, sample_rate: 0, auth_required: false,
  output_buffer_size: 16384, output_buffer_timeout: 250, heartbeat_interval: heartbeatMs,
});

net
  .createServer((sock) => {
    let buf = Buffer.alloc(0);
    let magic = false;
    const beat = setInterval(() => sock.write(frame(0, '_heartbeat_')), heartbeatMs);
    sock.on('close', () => clearInterval(beat)).on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!magic) {
        if (buf.length < 4) return;
        magic = true;
        buf = buf.subarray(4);
      }
      for (;;) {
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString();
        const verb = line.split(' ')[0];
        let body = null;
        if (['IDENTIFY', 'PUB', 'MPUB', 'DPUB', 'AUTH'].includes(verb)) {
          if (buf.length < nl + 5) return;
          const size = buf.readUInt32BE(nl + 1);
          if (buf.length < nl + 5 + size) return;
          body = buf.subarray(nl + 5, nl + 5 + size);
          buf = buf.subarray(nl + 5 + size);
        } else {
          buf = buf.subarray(nl + 1);
        }
        if (verb === 'IDENTIFY') sock.write(frame(0, identify));
        else if (verb !== 'NOP') fs.appendFileSync(log, `${line}${verb === 'MPUB' ? ' ' + body.readUInt32BE(0) : ''}\n`);
      }
    });
  })
  .listen(Number(arg('port')), '127.0.0.1');
