#!/usr/bin/env node
// The demo page's static server: serves the files of one directory on 127.0.0.1, on a free port
// (or PORT), and prints its URL on stdout once it listens. GET and HEAD only; only the directory's
// own files ("/" is index.html); no listing. SIGINT/SIGTERM stop it.
// Usage: node serve.mjs DIR [PORT]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const [dir, port = '0'] = process.argv.slice(2);
if (!dir || !fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
  process.stderr.write(`serve: ${dir ?? '(none)'}: not a directory; usage: node serve.mjs DIR [PORT]\n`);
  process.exit(64);
}
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const server = http.createServer((req, res) => {
  const name = new URL(req.url, 'http://x').pathname.slice(1) || 'index.html';
  const type = types[path.extname(name)];
  let body = null;
  // Only a plain file name of this directory with a known type: no "..", no subdirectories.
  if (type && /^[\w.-]+$/.test(name) && !name.startsWith('.')) {
    try { body = fs.readFileSync(path.join(dir, name)); } catch { /* 404 below */ }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
  } else if (body === null) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  } else {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/`));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => server.close(() => process.exit(0)) && server.closeAllConnections());
