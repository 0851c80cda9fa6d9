// A TLS front for a WebSocket endpoint, for ethcall_wss_test.sh: node's https server with the
// given certificate terminates TLS on 127.0.0.1 (a port of the kernel's choosing), and each
// WebSocket connection made to it gets one of its own to UPSTREAM (anvil's ws://); messages go
// both ways as they came (text stays text), and either side closing closes the other.
//   node wss_relay.mjs CERT KEY UPSTREAM
// Prints "listening PORT" once it accepts; then one line per event on stdout: "open N" (a
// client's WebSocket handshake was done), "tls-error CODE" (a TLS handshake that failed), and what
// the node sends the client: "answer METHOD" (" (subscribed)" appended once an eth_subscribe of
// that connection was answered), "notification" (eth_subscription), so a test can wait until a
// client is where it wants it.
import fs from 'node:fs';
import https from 'node:https';
import { WebSocketServer, WebSocket } from 'ws';

const [cert, key, upstream] = process.argv.slice(2);
if (!upstream) {
  console.error('usage: node wss_relay.mjs CERT KEY UPSTREAM');
  process.exit(64);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
server.on('tlsClientError', (err) => console.log(`tls-error ${err.code || err.message}`));
const wss = new WebSocketServer({ server, maxPayload: 256 * 1024 * 1024 });
let opened = 0;
wss.on('connection', (down) => {
  console.log(`open ${++opened}`);
  const up = new WebSocket(upstream, { maxPayload: 256 * 1024 * 1024 });
  const early = [];  // what the client sent before anvil's side was open
  const methods = new Map();  // request id -> method, of this connection
  let subscribed = false;
  const parse = (data) => {
    try {
      const v = JSON.parse(data.toString());
      return Array.isArray(v) ? v : [v];
    } catch {
      return [];
    }
  };
  const tell = (data) => {
    for (const m of parse(data)) {
      if (m && m.method === 'eth_subscription') {
        console.log('notification');
      } else if (m && methods.has(m.id)) {
        const method = methods.get(m.id);
        methods.delete(m.id);
        console.log(`answer ${method}${subscribed ? ' (subscribed)' : ''}`);
        if (method === 'eth_subscribe' && m.result) subscribed = true;
      }
    }
  };
  const closeBoth = () => {
    if (down.readyState === WebSocket.OPEN) down.close();
    else down.terminate();
    if (up.readyState === WebSocket.OPEN) up.close();
    else up.terminate();
  };
  down.on('message', (data, isBinary) => {
    for (const m of parse(data)) if (m && m.method) methods.set(m.id, m.method);
    if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
    else early.push([data, isBinary]);
  });
  up.on('open', () => {
    for (const [data, isBinary] of early.splice(0)) up.send(data, { binary: isBinary });
  });
  up.on('message', (data, isBinary) => {
    tell(data);
    if (down.readyState === WebSocket.OPEN) down.send(data, { binary: isBinary });
  });
  down.on('close', closeBoth);
  up.on('close', closeBoth);
  down.on('error', closeBoth);
  up.on('error', closeBoth);
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
