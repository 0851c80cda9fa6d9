// A stand-in for an nsq auth server (nsq's auth HTTP protocol, as nsqd --auth-http-address
// queries it; no implementation is packaged in Debian or npm). Secrets map to canned answers:
//   alice  -> publish+subscribe on ^orders$ (any channel), ttl 3600
//   reader -> subscribe only on ^orders$ channel ^archive$
//   other  -> 403
// Each request is appended to --log FILE as JSON (its query), so a test can see what was asked.
// Usage: node nsq_auth_standin.mjs --port N --log FILE
import http from 'node:http';
import fs from 'node:fs';

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1];
const grants = {
  alice: [{ topic: '^orders$', channels: ['.*'], permissions: ['publish', 'subscribe'] }],
  reader: [{ topic: '^orders$', channels: ['^archive$'], permissions: ['subscribe'] }],
};
http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    fs.appendFileSync(arg('log'), JSON.stringify(Object.fromEntries(url.searchParams)) + '\n');
    const secret = url.searchParams.get('secret');
    if (url.pathname !== '/auth' || !grants[secret]) {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      return res.end('{"message":"FORBIDDEN"}');
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ ttl: 3600, identity: secret, identity_url: '', authorizations: grants[secret] }));
  })
  .listen(Number(arg('port')), '127.0.0.1');
