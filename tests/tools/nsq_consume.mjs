// Consumes N messages of a topic/channel with nsqjs (npm, an NSQ client no one here wrote) and
// prints each body on a line. Exits 0 after N, 1 when they do not all arrive within --timeout ms.
// Usage: node nsq_consume.mjs --nsqd HOST:PORT --topic T --channel C --count N [--timeout MS] [--max-in-flight N]
// NSQ_AUTH_SECRET in the environment: sent with AUTH when the broker requires it.
import nsq from 'nsqjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const count = Number(arg('count', '1'));
const timeout = Number(arg('timeout', '20000'));
const reader = new nsq.Reader(arg('topic'), arg('channel', 'check'), {
  nsqdTCPAddresses: [arg('nsqd')],
  maxInFlight: Number(arg('max-in-flight', '500')),
  ...(process.env.NSQ_AUTH_SECRET ? { authSecret: process.env.NSQ_AUTH_SECRET } : {}),
});
let got = 0;
const out = [];
const finish = (code) => {
  process.stdout.write(out.join(''), () => {
    reader.close();
    process.exit(code);
  });
};
reader.on('message', (m) => {
  out.push(m.body.toString() + '\n');
  m.finish();
  if (++got === count) finish(0);
});
reader.on('error', (e) => console.error(`nsq_consume: ${e.message}`));
setTimeout(() => {
  console.error(`nsq_consume: ${got} of ${count} messages within ${timeout} ms`);
  finish(1);
}, timeout);
reader.connect();
