#!/usr/bin/env node
// Compiles Solidity files with the pinned solcjs (tests/package.json) through its standard JSON
// interface, optimizer on, all in one compiler run, and writes for each contract in them, into
// <outdir>:
//   <Name>.abi   the ABI as JSON
//   <Name>.bin   the creation bytecode as hex without 0x (as `solc --bin` writes it)
//   <Name>.json  {contract, source, compiler, abi, bytecode ("0x.."), deployedBytecode,
//                 methodIdentifiers, eventTopics, errorSelectors}
// eventTopics maps each non-anonymous event signature to its topic0, errorSelectors each custom
// error signature to its selector (computed with ethers, since solc does not output them).
//
// usage: node tests/tools/solc_compile.mjs <file.sol>... <outdir>
// Exit status: 0 ok, 64 usage, 65 compile errors, 66 file missing.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { basename, dirname, resolve, join } from 'node:path';
import solc from 'solc';
import { Interface } from 'ethers';

function fail(code, msg) {
  process.stderr.write(`solc_compile: ${msg}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.length < 2) fail(64, 'usage: solc_compile.mjs <file.sol>... <outdir>');
const outdir = args.pop();
const files = args;
const sources = {};
const baseDirs = [];
for (const file of files) {
  const path = resolve(file);
  if (!existsSync(path)) fail(66, `${file}: no such file`);
  const name = basename(path);
  if (sources[name]) fail(64, `${file}: a second file named ${name}`);
  sources[name] = { content: readFileSync(path, 'utf8') };
  if (!baseDirs.includes(dirname(path))) baseDirs.push(dirname(path));
}
const file = files.join(' ');
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'] },
    },
  },
};

// Relative imports resolve against the compiled files' directories, in the order given.
function findImports(name) {
  for (const dir of baseDirs) {
    const p = resolve(dir, name);
    if (existsSync(p)) return { contents: readFileSync(p, 'utf8') };
  }
  return { error: `import ${name}: not found (looked in ${baseDirs.join(', ')})` };
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
