// A stand-in for an nsq auth server (nsq's auth HTTP protocol, as nsqd --auth-http-address
// queries it; no implementation is packaged in Debian or npm). Secrets map to canned answers:
//   alice  -> publish+subscribe on ^orders$ (any channel), ttl 3600
//   reader -> subscribe only on ^orders$ channel ^archive$
//   brief  -> the first time: publish+subscribe on ^orders$, ttl 1; after that: 403 (an AUTH that
//             expires and is not renewed)
//   other  -> 403
// Each request is appended to --log FILE as JSON (its query), so a test can see what was asked.
// Usage: node nsq_auth_standin.mjs --port N --log FILE
import http from 'node:http';
import fs from 'node:fs';

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1];
const grants = {
  alice: [{ topic: '^orders$', channels: ['.*'], permissions: ['publish', 'subscribe'] }],
  reader: [{ topic: '^orders$', channels: ['^archive$'], permissions: ['subscribe'] }],
  brief: [{ topic: '^orders$', channels: ['.*'], permissions: ['publish', 'subscribe'] }],
};
const asked = {};
http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    fs.appendFileSync(arg('log'), JSON.stringify(Object.fromEntries(url.searchParams)) + '\n');
    const secret = url.searchParams.get('secret');
    asked[secret] = (asked[secret] || 0) + 1;
    if (url.pathname !== '/auth' || !grants[secret] || (secret === 'brief' && asked[secret] > 1)) {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      return res.end('{"message":"FORBIDDEN"}');
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const ttl = secret === 'brief' ? 1 : 3600;
    res.end(JSON.stringify({ ttl, identity: secret, identity_url: '', authorizations: grants[secret] }));
  })
  .listen(Number(arg('port')), '127.0.0.1');
