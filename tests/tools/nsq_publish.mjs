// Publishes messages with nsqjs (npm, an NSQ client no one here wrote): each stdin line is one
// message, base64-encoded with --base64 (so bodies may hold newlines or any bytes), else as it is.
// Usage: node nsq_publish.mjs --nsqd HOST:PORT --topic T [--base64] < lines
// NSQ_AUTH_SECRET in the environment: sent with AUTH when the broker requires it.
import nsq from 'nsqjs';
import readline from 'node:readline';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const base64 = process.argv.includes('--base64');
const [host, port] = arg('nsqd').split(':');
const bodies = [];
for await (const line of readline.createInterface({ input: process.stdin })) {
  bodies.push(base64 ? Buffer.from(line, 'base64') : Buffer.from(line));
}
const w = new nsq.Writer(host, Number(port),
  process.env.NSQ_AUTH_SECRET ? { authSecret: process.env.NSQ_AUTH_SECRET } : {});
w.on('ready', () => {
  w.publish(arg('topic'), bodies, (err) => {
    if (err) {
      console.error(`nsq_publish: ${err.message}`);
      process.exit(1);
    }
    w.close();
    process.exit(0);
  });
});
w.on('error', (e) => {
  console.error(`nsq_publish: ${e.message}`);
  process.exit(1);
});
w.connect();
