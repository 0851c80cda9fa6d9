#!/usr/bin/env node
// Compiles one Solidity file with the pinned solcjs (tests/package.json) through its standard JSON
// interface, optimizer on, and writes for each contract in it, into <outdir>:
//   <Name>.abi   the ABI as JSON
//   <Name>.bin   the creation bytecode as hex without 0x (as `solc --bin` writes it)
//   <Name>.json  {contract, source, compiler, abi, bytecode ("0x.."), deployedBytecode,
//                 methodIdentifiers, eventTopics, errorSelectors}
// eventTopics maps each non-anonymous event signature to its topic0, errorSelectors each custom
// error signature to its selector (computed with ethers, since solc does not output them).
//
// usage: node tests/tools/solc_compile.mjs <file.sol> <outdir>
// Exit status: 0 ok, 64 usage, 65 compile errors, 66 file missing.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { basename, dirname, resolve, join } from 'node:path';
import solc from 'solc';
import { Interface } from 'ethers';

function fail(code, msg) {
  process.stderr.write(`solc_compile: ${msg}\n`);
  process.exit(code);
}

const [file, outdir] = process.argv.slice(2);
if (!file || !outdir || process.argv.length !== 4) fail(64, 'usage: solc_compile.mjs <file.sol> <outdir>');
const path = resolve(file);
if (!existsSync(path)) fail(66, `${file}: no such file`);

const sourceName = basename(path);
const baseDir = dirname(path);
const input = {
  language: 'Solidity',
  sources: { [sourceName]: { content: readFileSync(path, 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'] },
    },
  },
};

// Relative imports resolve against the compiled file's directory.
function findImports(name) {
  const p = resolve(baseDir, name);
  if (!existsSync(p)) return { error: `import ${name}: not found (looked at ${p})` };
  return { contents: readFileSync(p, 'utf8') };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
let errors = 0;
for (const e of output.errors ?? []) {
  process.stderr.write((e.formattedMessage ?? e.message).trimEnd() + '\n');
  if (e.severity === 'error') errors++;
}
if (errors > 0) fail(65, `${file}: ${errors} error(s)`);

mkdirSync(outdir, { recursive: true });
const written = [];
for (const [source, contracts] of Object.entries(output.contracts ?? {})) {
  for (const [name, c] of Object.entries(contracts)) {
    const iface = new Interface(c.abi);
    const eventTopics = {};
    const errorSelectors = {};
    iface.forEachEvent((ev) => {
      if (!ev.anonymous) eventTopics[ev.format('sighash')] = ev.topicHash;
    });
    iface.forEachError((er) => {
      errorSelectors[er.format('sighash')] = er.selector;
    });
    const bin = c.evm.bytecode.object;
    writeFileSync(join(outdir, `${name}.abi`), JSON.stringify(c.abi) + '\n');
    writeFileSync(join(outdir, `${name}.bin`), bin + '\n');
    writeFileSync(
      join(outdir, `${name}.json`),
      JSON.stringify(
        {
          contract: name,
          source,
          compiler: solc.version(),
          abi: c.abi,
          bytecode: '0x' + bin,
          deployedBytecode: '0x' + c.evm.deployedBytecode.object,
          methodIdentifiers: c.evm.methodIdentifiers,
          eventTopics,
          errorSelectors,
        },
        null,
        2,
      ) + '\n',
    );
    written.push(name);
  }
}
process.stderr.write(`solc_compile: ${file}: wrote ${written.join(', ')} to ${outdir} (solc ${solc.version()})\n`);
