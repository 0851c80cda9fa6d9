#!/usr/bin/env node
// The reference for bench/abi: ethers v6 (pinned in tests/package.json) encodes and decodes every
// case of a corpus from gen_corpus.mjs, over and over for about --seconds, and prints its rate.
// One operation = one encode + one decode of one case. Types are parsed once per case, before timing,
// as abi_bench.cpp does.
//
//   node bench/abi/abi_ethers.mjs CORPUS.jsonl [--seconds 3]
// Last line: "ops_per_sec N".
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', '..', 'tests', 'package.json'));
const { AbiCoder, ParamType, version } = require('ethers');

const corpusPath = process.argv[2];
let seconds = 3;
const si = process.argv.indexOf('--seconds');
if (si > 0) seconds = Number(process.argv[si + 1]);
if (!corpusPath || !(seconds > 0)) {
  process.stderr.write('usage: abi_ethers.mjs CORPUS.jsonl [--seconds 3]\n');
  process.exit(64);
}

const coder = AbiCoder.defaultAbiCoder();
const cases = readFileSync(corpusPath, 'utf8').split('\n').filter(Boolean).map((line, i) => {
  const c = JSON.parse(line);
  const types = ParamType.from(`tuple${c.sig}`).components;
  // Top-level args may be an object keyed by name; ethers takes the array.
  const args = Array.isArray(c.args) ? c.args : types.map((t) => c.args[t.name]);
  try {
    coder.encode(types, args);
  } catch (e) {
    process.stderr.write(`abi_ethers: corpus line ${i + 1} (${c.name}): ${e.shortMessage ?? e.message}\n`);
    process.exit(65);
  }
  return { types, args };
});

let sink = 0;
function pass() {
  for (const c of cases) {
    const data = coder.encode(c.types, c.args);
    const back = coder.decode(c.types, data);
    sink += data.length + back.length;
  }
}

// Warm up the JIT for a fifth of the time, then measure whole passes.
const warmEnd = performance.now() + seconds * 200;
while (performance.now() < warmEnd) pass();
let passes = 0;
const t0 = performance.now();
let elapsed = 0;
do {
  pass();
  passes++;
  elapsed = (performance.now() - t0) / 1000;
} while (elapsed < seconds);
const ops = (passes * cases.length) / elapsed;
process.stdout.write(`ethers ${version} (node ${process.version}): ${cases.length} cases x ${passes} passes in ` +
  `${elapsed.toFixed(2)} s (sink ${sink % 1000})\n`);
process.stdout.write(`ops_per_sec ${Math.round(ops)}\n`);
