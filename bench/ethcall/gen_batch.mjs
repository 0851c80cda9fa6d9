// Generates the same N eth_calls twice: as `ethcall batch` input lines (CALLS.jsonl) and as
// ready-made JSON-RPC batch bodies for raw_batch_load.mjs (BODIES.json), BATCH calls per body.
// Usage: node gen_batch.mjs ADDRESS N BATCH CALLS.jsonl BODIES.json
// Runs from bench/ethcall with tests/node_modules (ethers) for the calldata.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/package.json"));
const { Interface } = require("ethers");

const [address, nArg, batchArg, callsFile, bodiesFile] = process.argv.slice(2);
const n = Number(nArg), batch = Number(batchArg);
const iface = new Interface(["function square(uint256 x, bool strict) view returns (uint256)"]);

const lines = [], bodies = [];
let current = [];
for (let i = 0; i < n; i++) {
  lines.push(JSON.stringify({ id: i, to: address, sig: "square(uint256,bool)(uint256)", args: [String(i), false] }));
  current.push({ jsonrpc: "2.0", id: i, method: "eth_call",
    params: [{ to: address, data: iface.encodeFunctionData("square", [i, false]) }, "latest"] });
  if (current.length === batch || i === n - 1) {
    bodies.push({ body: JSON.stringify(current), calls: current.length });
    current = [];
  }
}
fs.writeFileSync(callsFile, lines.join("\n") + "\n");
fs.writeFileSync(bodiesFile, JSON.stringify(bodies));
