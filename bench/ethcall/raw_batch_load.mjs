// The reference for `ethcall batch`: the node's own batched eth_call capacity, measured by
// posting ready-made JSON-RPC batch bodies over kept-alive HTTP connections (no encoding, no
// decoding, no output). Usage: node raw_batch_load.mjs URL CALLS.jsonl-derived-bodies.json CONCURRENCY
// Prints: {"calls":N,"seconds":S,"calls_per_s":R}
import http from "node:http";
import fs from "node:fs";

const [url, bodiesFile, concurrencyArg] = process.argv.slice(2);
const bodies = JSON.parse(fs.readFileSync(bodiesFile, "utf8")); // [{body: "...", calls: n}]
const concurrency = Number(concurrencyArg || 1);
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let n = 0;
        res.on("data", (d) => (n += d.length));
        res.on("end", () => (res.statusCode === 200 && n > 0 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
    req.on("error", reject);
    req.end(body);
  });
}

let next = 0, calls = 0;
const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < bodies.length) {
    const b = bodies[next++];
    await post(b.body);
    calls += b.calls;
  }
}));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
agent.destroy();
console.log(JSON.stringify({ calls, seconds: +seconds.toFixed(3), calls_per_s: Math.round(calls / seconds) }));
