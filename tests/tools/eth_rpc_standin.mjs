// A stand-in Ethereum node (JSON-RPC over HTTP and WebSocket on one port) that answers what a
// test tells it to: the hostile answers anvil cannot be made to give (a wrong or null id, a
// result of the wrong shape, a revert with malformed data, a body larger than any bound, a flood
// of subscription notifications). Not a node: it knows no chain.
//
// Usage: node eth_rpc_standin.mjs [--answer TEMPLATE] [--body-bytes N] [--flood N]
//   --answer TEMPLATE  each request's answer: JSON text in which the string "$ID" stands for the
//                      request's id (default {"jsonrpc":"2.0","id":"$ID","result":"0x1"}); a batch
//                      gets an array of them
//   --body-bytes N     instead, a result string of N bytes, streamed (HTTP chunked / one WS message)
//   --flood N          WebSocket: eth_subscribe is answered with the subscription "0x1"; before
//                      each later answer, N newHeads notifications of about 1 KiB are sent
// Prints the port on stdout once it listens; stops on SIGTERM.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const template = arg('answer', '{"jsonrpc":"2.0","id":"$ID","result":"0x1"}');
const bodyBytes = Number(arg('body-bytes', 0));
const flood = Number(arg('flood', 0));

const answerOne = (req) => template.split('"$ID"').join(JSON.stringify(req && req.id !== undefined ? req.id : null));
const answerText = (text) => {
  let req;
  try {
    req = JSON.parse(text);
  } catch {
    return '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}';
  }
  return Array.isArray(req) ? `[${req.map(answerOne).join(',')}]` : answerOne(req);
};

// A huge answer, written in 1 MiB pieces as the peer takes them.
function writeHuge(write, end, id) {
  const piece = '0'.repeat(1 << 20);
  let left = bodyBytes;
  write(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":"0x`);
  const more = () => {
    while (left > 0) {
      const n = Math.min(left, piece.length);
      left -= n;
      if (!write(piece.slice(0, n))) return false;
    }
    end('"}');
    return true;
  };
  return more;
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (bodyBytes > 0) {
      let id = null;
      try {
        id = JSON.parse(body).id;
      } catch {}
      const more = writeHuge((s) => res.write(s), (s) => res.end(s), id);
      res.on('drain', more);
      res.on('error', () => {});
      more();
      return;
    }
    res.end(answerText(body));
  });
});

const wss = new WebSocketServer({ server, maxPayload: 1 << 30 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data) => {
    const text = data.toString();
    let req = null;
    try {
      req = JSON.parse(text);
    } catch {}
    if (req && req.method === 'eth_subscribe') return ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: '0x1' }));
    const pad = 'f'.repeat(1000);
    for (let i = 0; i < flood; i++)
      ws.send(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x${i.toString(16)}","extra":"${pad}"}}}`);
    if (bodyBytes > 0) {
      const parts = [];
      const more = writeHuge((s) => (parts.push(s), true), (s) => parts.push(s), req ? req.id : null);
      more();
      return ws.send(parts.join(''));
    }
    ws.send(answerText(text));
  });
});

server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
