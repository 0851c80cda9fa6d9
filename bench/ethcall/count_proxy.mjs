// A counting HTTP proxy for JSON-RPC: forwards every POST to UPSTREAM and appends one line per
// HTTP round trip to LOG: the JSON-RPC method names it carried (a batch is one round trip).
// Usage: node count_proxy.mjs UPSTREAM-URL LOG-FILE PORT-FILE   (writes the port it listens on)
import http from "node:http";
import fs from "node:fs";

const [upstream, logFile, portFile] = process.argv.slice(2);
const up = new URL(upstream);
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    let methods = "?";
    try {
      const j = JSON.parse(body.toString("utf8"));
      methods = (Array.isArray(j) ? j : [j]).map((r) => r.method).join(",");
    } catch { /* counted as "?" */ }
    fs.appendFileSync(logFile, methods + "\n");
    const fwd = http.request(
      { host: up.hostname, port: up.port, path: up.pathname, method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": body.length } },
      (r) => {
        res.writeHead(r.statusCode, { "content-type": r.headers["content-type"] || "application/json" });
        r.pipe(res);
      });
    fwd.on("error", () => { res.writeHead(502); res.end(); });
    fwd.end(body);
  });
});
server.listen(0, "127.0.0.1", () => fs.writeFileSync(portFile, String(server.address().port)));
process.on("SIGTERM", () => process.exit(0));
