// nsqjs (npm, a real NSQ client no one here wrote) against nsq-broker: Writer PUB/MPUB/DPUB, Reader with
// max-in-flight > 1, requeue, touch, deflate, snappy (nsqjs frames it with the npm snappystream package:
// an independent implementation of snappy's framing format), (when the broker has its HTTP API) /pub,
// and TLS (tls_v1, with deflate on top, client certificates, --tls-required) with certificates the
// openssl CLI makes.
// Usage: node nsqjs_broker.mjs --broker PATH/TO/nsq-broker
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import nsq from 'nsqjs';
import { check, finish, freePort, sleep, withTimeout } from './lib.mjs';

const brokerPath = process.argv[process.argv.indexOf('--broker') + 1];

const tcpPort = await freePort();
const httpPort = await freePort();
const broker = spawn(brokerPath, ['--tcp-address', `127.0.0.1:${tcpPort}`, '--http-address', `127.0.0.1:${httpPort}`, '-q'],
  { stdio: ['ignore', 'inherit', 'inherit'] });
const addr = `127.0.0.1:${tcpPort}`;

async function waitListening() {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(tcpPort, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error('nsq-broker did not start');
}

function writer(opts = {}, port = tcpPort) {
  const w = new nsq.Writer('127.0.0.1', port, opts);
  return new Promise((resolve, reject) => {
    w.on('ready', () => resolve(w));
    w.on('error', reject);
    w.connect();
  });
}
const publish = (w, topic, msgs) => new Promise((res, rej) => w.publish(topic, msgs, (e) => (e ? rej(e) : res())));
const deferPublish = (w, topic, msg, ms) => new Promise((res, rej) => w.deferPublish(topic, msg, ms, (e) => (e ? rej(e) : res())));

function reader(topic, channel, opts, onMessage, address = addr) {
  const r = new nsq.Reader(topic, channel, { nsqdTCPAddresses: [address], ...opts });
  r.on('message', (m) => onMessage(m, r));
  r.on('error', (e) => console.log(`reader error: ${e.message}`));
  r.connect();
  return r;
}

// --- TLS --------------------------------------------------------------------------------------
const extraBrokers = [];
// A CA, a server certificate it signs for 127.0.0.1 and localhost, a client certificate.
function makeCerts() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'pipekit-nsqjs-tls-'));
  const ssl = (...a) => execFileSync('openssl', a, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pipekit test ca', '-keyout', 'ca.key', '-out', 'ca.pem');
  fs.writeFileSync(path.join(d, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(path.join(d, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const n of ['server', 'client']) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=pipekit test ${n}`, '-keyout', `${n}.key`, '-out', `${n}.csr`);
    ssl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', `${n}.ext`, '-out', `${n}.pem`);
  }
  const read = (n) => fs.readFileSync(path.join(d, n));
  return { dir: d, ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') };
}

async function startBroker(args) {
  const port = await freePort();
  const http = await freePort();
  const b = spawn(brokerPath, ['--tcp-address', `127.0.0.1:${port}`, '--http-address', `127.0.0.1:${http}`, '-q', ...args],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  extraBrokers.push(b);
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return { port, http, proc: b };
    await sleep(50);
  }
  throw new Error(`nsq-broker ${args.join(' ')} did not start`);
}

const getJSON = (port, p) => new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: p }, (res) => {
    let s = '';
    res.on('data', (d) => (s += d));
    res.on('end', () => { try { resolve(JSON.parse(s)); } catch (e) { reject(e); } });
  }).on('error', reject);
});

// A raw connection: magic, IDENTIFY asking for tls_v1, the plain response; then `after` is written
// instead of a ClientHello. Resolves with what the broker did: 'closed' or the bytes it sent.
function garbageAfterIdentify(port, after) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const body = JSON.stringify({ feature_negotiation: true, tls_v1: true, client_id: 'garbage' });
    const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
    let got = Buffer.alloc(0), sent = false;
    s.on('connect', () => s.write(Buffer.concat([Buffer.from('  V2IDENTIFY\n'), len, Buffer.from(body)])));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (!sent && got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) {
        sent = true;
        const resp = JSON.parse(got.subarray(8, 4 + got.readUInt32BE(0)).toString());
        got = got.subarray(4 + got.readUInt32BE(0));
        if (!resp.tls_v1) { s.destroy(); resolve('no tls_v1'); return; }
        s.write(after);
      }
    });
    // A TLS alert record (type 21) is all a broken handshake may get back.
    s.on('close', () => resolve(got.length === 0 ? 'closed' : got[0] === 0x15 && got.length === 7 ? 'closed after an alert'
      : `sent ${got.length} bytes`));
    s.on('error', () => {});
    setTimeout(() => { s.destroy(); resolve('still open after 10 s'); }, 10000);
  });
}

async function tlsTests() {
  const certs = makeCerts();
  const tlsArgs = ['--tls-cert', path.join(certs.dir, 'server.pem'), '--tls-key', path.join(certs.dir, 'server.key')];
  const tb = await startBroker(tlsArgs);
  const taddr = `127.0.0.1:${tb.port}`;

  // Writer and Reader with tls: true, the broker's certificate verified against the CA.
  {
    const tw = await writer({ tls: true, ca: certs.ca }, tb.port);
    const bodies = [];
    for (let i = 0; i < 200; i++) bodies.push(`tls-${i}`);
    const seen = new Set();
    let tr;
    let stats = null;
    const done = new Promise((resolve) => {
      tr = reader('js_tls', 'ch', { maxInFlight: 20, tls: true, ca: certs.ca }, async (m) => {
        seen.add(m.body.toString());
        if (!stats) stats = getJSON(tb.http, '/stats?format=json&topic=js_tls').catch(() => null);
        m.finish();
        if (seen.size === bodies.length) resolve();
      }, taddr);
    });
    await publish(tw, 'js_tls', bodies.slice(0, 100));
    for (const b of bodies.slice(100)) await publish(tw, 'js_tls', b);
    await withTimeout(done, 10000, 'tls messages');
    check('tls: every message arrived', bodies.every((b) => seen.has(b)), `${seen.size}/${bodies.length}`);
    const st = await stats;
    const c = st && st.topics[0] && st.topics[0].channels[0] && st.topics[0].channels[0].clients[0];
    check('tls: /stats shows the client as TLS', c && c.tls === true && /^TLS1\.[23]$/.test(c.tls_version) &&
      c.tls_cipher_suite.startsWith('TLS_'), JSON.stringify(c));
    await new Promise((resolve) => { tr.on('nsqd_closed', resolve); tr.close(); setTimeout(resolve, 2000); });
    tw.close();
  }

  // TLS with deflate on top (tlsVerification off, as a client that trusts the network would).
  {
    const tw = await writer({ tls: true, tlsVerification: false, deflate: true }, tb.port);
    const bodies = [];
    for (let i = 0; i < 200; i++) bodies.push(`tls-deflate-${i}-${'y'.repeat(300)}`);
    const seen = new Set();
    let tr;
    const done = new Promise((resolve) => {
      tr = reader('js_tls_deflate', 'ch', { maxInFlight: 20, tls: true, tlsVerification: false, deflate: true }, (m) => {
        seen.add(m.body.toString());
        m.finish();
        if (seen.size === bodies.length) resolve();
      }, taddr);
    });
    await publish(tw, 'js_tls_deflate', bodies.slice(0, 100));
    for (const b of bodies.slice(100)) await publish(tw, 'js_tls_deflate', b);
    await withTimeout(done, 10000, 'tls+deflate messages');
    check('tls+deflate: every message arrived intact', bodies.every((b) => seen.has(b)), `${seen.size}/${bodies.length}`);
    await new Promise((resolve) => { tr.on('nsqd_closed', resolve); tr.close(); setTimeout(resolve, 2000); });
    tw.close();
  }

  // Garbage where the ClientHello should be closes that connection only.
  {
    const tw = await writer({ tls: true, ca: certs.ca }, tb.port);
    const r1 = await garbageAfterIdentify(tb.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    check('garbage instead of a ClientHello: closed, nothing sent', r1 === 'closed', r1);
    const r2 = await garbageAfterIdentify(tb.port, Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5]));
    check('a broken ClientHello: closed, at most a TLS alert sent', r2 === 'closed' || r2 === 'closed after an alert', r2);
    await publish(tw, 'js_tls_after', 'still fine');
    check('a TLS writer connected before is unaffected', true);
    const tw2 = await writer({ tls: true, ca: certs.ca }, tb.port);
    await publish(tw2, 'js_tls_after', 'new one fine');
    check('a new TLS writer connects after the garbage', true);
    tw.close(); tw2.close();
  }

  // --tls-client-auth-policy require-verify (TLS required): a plain Writer's PUB is refused as nsqd
  // refuses it, a TLS Writer without a certificate is refused, one with a certificate publishes.
  {
    const mb = await startBroker([...tlsArgs, '--tls-root-ca-file', path.join(certs.dir, 'ca.pem'),
      '--tls-client-auth-policy', 'require-verify', '--tls-required', 'tcp-https']);
    const pw = await writer({}, mb.port);
    const plainErr = await new Promise((resolve) => {
      pw.on('error', (e) => resolve(String(e && e.message)));
      pw.publish('js_mtls', 'plain', (e) => resolve(e ? String(e.message || e) : 'published'));
      setTimeout(() => resolve('no answer'), 5000);
    });
    check('tls required: a plain PUB is refused with nsqd\'s E_INVALID', /cannot PUB in current state \(TLS required\)/.test(plainErr), plainErr);
    pw.close();
    const noCert = await Promise.race([
      writer({ tls: true, ca: certs.ca }, mb.port).then((w) =>
        new Promise((resolve) => {
          w.on('error', (e) => resolve(`error: ${e.message}`));
          w.on('closed', () => resolve('closed'));
          w.publish('js_mtls', 'no cert', (e) => resolve(e ? `error: ${e.message || e}` : 'published'));
        })).catch((e) => `error: ${e.message}`),
      sleep(8000).then(() => 'no answer'),
    ]);
    check('require-verify: a client without a certificate cannot publish', noCert !== 'published' && noCert !== 'no answer', noCert);
    const cw = await writer({ tls: true, ca: certs.ca, cert: certs.cert, key: certs.key }, mb.port);
    await publish(cw, 'js_mtls', 'with cert');
    check('require-verify: a client with a certificate from the CA publishes', true);
    cw.close();
  }
  fs.rmSync(certs.dir, { recursive: true, force: true });
}

try {
  await waitListening();
  const w = await writer();

  // Publish and consume with max-in-flight 50: PUB, MPUB and a deferred DPUB, each exactly once.
  {
    const want = new Set();
    const bodies = [];
    for (let i = 0; i < 500; i++) { bodies.push(`m-${i}`); want.add(`m-${i}`); }
    want.add('single'); want.add('deferred');
    const seen = new Map();
    let deferredAt = 0;
    const t0 = Date.now();
    const done = new Promise((resolve) => {
      reader('js_events', 'ch', { maxInFlight: 50 }, (m) => {
        const b = m.body.toString();
        seen.set(b, (seen.get(b) || 0) + 1);
        if (b === 'deferred') deferredAt = Date.now() - t0;
        m.finish();
        if (seen.size === want.size) resolve();
      });
    });
    await publish(w, 'js_events', 'single');
    await publish(w, 'js_events', bodies);
    await deferPublish(w, 'js_events', ['deferred'], 500);  // nsqjs 0.13 wants an array here
    await withTimeout(done, 10000, 'all messages');
    check('every message arrived', [...want].every((b) => seen.get(b) === 1), `${seen.size}/${want.size}`);
    check('the deferred message waited', deferredAt >= 400, `${deferredAt} ms`);
  }

  // Requeue: the first delivery is requeued, the second (attempts 2) finished.
  {
    const attempts = [];
    const done = new Promise((resolve) => {
      reader('js_requeue', 'ch', { maxInFlight: 5 }, (m) => {
        attempts.push(m.attempts);
        if (m.attempts === 1) m.requeue(0, false);
        else { m.finish(); resolve(); }
      });
    });
    await publish(w, 'js_requeue', 'again');
    await withTimeout(done, 10000, 'requeue');
    check('requeued with attempts counted', JSON.stringify(attempts) === '[1,2]', JSON.stringify(attempts));
  }

  // Touch: msg_timeout 1 s, touched at 0.6 s and 1.2 s, finished at 1.8 s: delivered once.
  {
    let deliveries = 0;
    const done = new Promise((resolve) => {
      reader('js_touch', 'ch', { maxInFlight: 2, messageTimeout: 1000 }, (m) => {
        deliveries++;
        setTimeout(() => m.touch(), 600);
        setTimeout(() => m.touch(), 1200);
        setTimeout(() => { m.finish(); resolve(); }, 1800);
      });
    });
    await publish(w, 'js_touch', 'slow');
    await withTimeout(done, 10000, 'touch');
    await sleep(1200);
    check('a touched message is not redelivered', deliveries === 1, `${deliveries} deliveries`);
  }

  // Deflate both ways: a Writer and a Reader that negotiate it.
  {
    const dw = await writer({ deflate: true });
    const bodies = [];
    for (let i = 0; i < 300; i++) bodies.push(`deflated-${i}-${'x'.repeat(200)}`);
    const seen = new Set();
    let dr;
    const done = new Promise((resolve) => {
      dr = reader('js_deflate', 'ch', { maxInFlight: 20, deflate: true }, (m) => {
        seen.add(m.body.toString());
        m.finish();
        if (seen.size === bodies.length) resolve();
      });
    });
    await publish(dw, 'js_deflate', bodies.slice(0, 100));
    for (const b of bodies.slice(100)) await publish(dw, 'js_deflate', b);
    await withTimeout(done, 10000, 'deflate messages');
    check('deflate: every message arrived intact', bodies.every((b) => seen.has(b)), `${seen.size}/${bodies.length}`);
    // Closed by the client before the broker stops: a deflate stream cut by the server's close
    // makes nsqjs's inflater throw "unexpected end of file" (it would with nsqd too).
    await new Promise((resolve) => { dr.on('nsqd_closed', resolve); dr.close(); setTimeout(resolve, 2000); });
    dw.close();
  }

  // Snappy both ways: a Writer and a Reader that negotiate it. Bodies large enough (and some over
  // 64 KiB) that frames span several snappy chunks and reads; compressible and random ones.
  {
    const sw = await writer({ snappy: true });
    const bodies = [];
    for (let i = 0; i < 400; i++) bodies.push(`snappy-${i}-${'y'.repeat(i * 7)}`);
    for (let i = 0; i < 5; i++) bodies.push(`big-${i}-` + 'z'.repeat(70000 + i * 1000));
    for (let i = 0; i < 20; i++) {
      let r = `rand-${i}-`;
      for (let j = 0; j < 3000; j++) r += String.fromCharCode(33 + Math.floor(Math.random() * 90));
      bodies.push(r);
    }
    const seen = new Map();
    let sr;
    const done = new Promise((resolve) => {
      sr = reader('js_snappy', 'ch', { maxInFlight: 30, snappy: true }, (m) => {
        const b = m.body.toString();
        seen.set(b, (seen.get(b) || 0) + 1);
        m.finish();
        if (seen.size === bodies.length) resolve();
      });
    });
    await publish(sw, 'js_snappy', bodies.slice(0, 200));
    for (const b of bodies.slice(200)) await publish(sw, 'js_snappy', b);
    await withTimeout(done, 20000, 'snappy messages');
    await sleep(300);  // a duplicate would show up by now
    const count = [...seen.values()].reduce((a, b) => a + b, 0);
    check('snappy: every message arrived intact, once', bodies.every((b) => seen.get(b) === 1) && count === bodies.length,
      `${seen.size} distinct, ${count} received, ${bodies.length} sent`);
    // The broker's /stats shows the snappy clients, as nsqd's does.
    const stats = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port: httpPort, path: '/stats?format=json&topic=js_snappy' }, (res) => {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve(t));
      }).on('error', () => resolve(''));
    });
    if (stats !== '') {
      const j = JSON.parse(stats);
      const topic = (j.topics || []).find((t) => t.topic_name === 'js_snappy');
      const clients = topic ? topic.channels.flatMap((c) => c.clients) : [];
      check('snappy: /stats shows the consumer with snappy true', clients.length === 1 && clients[0].snappy === true &&
        clients[0].deflate === false, JSON.stringify(clients.map((c) => [c.snappy, c.deflate])));
    }
    await new Promise((resolve) => { sr.on('nsqd_closed', resolve); sr.close(); setTimeout(resolve, 2000); });
    sw.close();
  }

  // Both deflate and snappy asked for: E_IDENTIFY_FAILED, as nsqd (nsqjs refuses to ask, so a raw socket does).
  {
    const reply = await withTimeout(new Promise((resolve) => {
      const s = net.connect(tcpPort, '127.0.0.1', () => {
        const body = Buffer.from(JSON.stringify({ feature_negotiation: true, deflate: true, snappy: true }));
        const len = Buffer.alloc(4);
        len.writeUInt32BE(body.length);
        s.write(Buffer.concat([Buffer.from('  V2IDENTIFY\n'), len, body]));
      });
      let got = Buffer.alloc(0);
      s.on('data', (d) => { got = Buffer.concat([got, d]); });
      s.on('close', () => resolve(got));
      s.on('error', () => {});
    }), 10000, 'IDENTIFY reply');
    const type = reply.length >= 8 ? reply.readUInt32BE(4) : -1;
    const text = reply.subarray(8).toString();
    check('deflate and snappy together: E_IDENTIFY_FAILED, then closed', type === 1 && text.startsWith('E_IDENTIFY_FAILED'),
      `${type} ${text}`);
  }

  // HTTP /pub, consumed over TCP (when the HTTP API is there).
  {
    const status = await new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: httpPort, path: '/pub?topic=js_http', method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', () => resolve(0));
      req.end('over http');
    });
    if (status === 0) {
      console.log('SKIP: HTTP /pub (no HTTP listener)');
    } else {
      check('HTTP /pub answers 200', status === 200, `${status}`);
      let body = '';
      const done = new Promise((resolve) => {
        reader('js_http', 'ch', { maxInFlight: 1 }, (m) => { body = m.body.toString(); m.finish(); resolve(); });
      });
      await withTimeout(done, 10000, 'http message');
      check('HTTP /pub message consumed', body === 'over http', body);
    }
  }
  w.close();

  await tlsTests();
} catch (e) {
  check('no exception', false, e.stack);
} finally {
  broker.kill('SIGTERM');
}
for (const b of extraBrokers) b.kill('SIGTERM');
const code = await new Promise((resolve) => broker.on('exit', (c) => resolve(c)));
check('nsq-broker exits 0 on SIGTERM', code === 0, `exit ${code}`);
finish();
