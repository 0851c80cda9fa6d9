// Compiles tests/fixtures/abigen/*.sol (and tests/fixtures/contracts/CallDemo.sol) with the pinned solc (tests/package.json) into the committed
// fixtures abigen-cpp's golden test reads: <Contract>.abi (JSON ABI) for each contract, <Contract>.bin
// (creation bytecode, hex) for the contracts listed in `withBin`, and Linked.json (solc's
// --combined-json abi,bin shape: {"contracts":{"Linked.sol:MathLib":{"abi":[...],"bin":"..."}}}).
// Run by tests/abigen/update-golden.sh --compile; the outputs are committed, so tests need no solc.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const solc = require(path.join(here, "../node_modules/solc"));
const dir = path.join(here, "../fixtures/abigen");
const withBin = new Set(["Token", "Vault", "CallDemo"]);

const sources = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort())
  sources[f] = { content: fs.readFileSync(path.join(dir, f), "utf8") };
sources["CallDemo.sol"] = { content: fs.readFileSync(path.join(dir, "../contracts/CallDemo.sol"), "utf8") };
const input = {
  language: "Solidity",
  sources,
  settings: { optimizer: { enabled: false }, outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
for (const [file, contracts] of Object.entries(out.contracts)) {
  if (file === "Linked.sol") {
    const combined = { contracts: {}, version: solc.version() };
    for (const [name, c] of Object.entries(contracts).sort())
      combined.contracts[`${file}:${name}`] = { abi: c.abi, bin: c.evm.bytecode.object };
    fs.writeFileSync(path.join(dir, "Linked.json"), JSON.stringify(combined, null, 1) + "\n");
    continue;
  }
  for (const [name, c] of Object.entries(contracts)) {
    fs.writeFileSync(path.join(dir, `${name}.abi`), JSON.stringify(c.abi, null, 1) + "\n");
    if (withBin.has(name)) fs.writeFileSync(path.join(dir, `${name}.bin`), c.evm.bytecode.object + "\n");
  }
}
console.log(`compiled with solc ${solc.version()}: ${Object.keys(sources).join(" ")}`);
