#!/usr/bin/env node
// Prints the absolute path of the pinned anvil binary that `npm ci` in tests/ installed
// (package @foundry-rs/anvil-linux-amd64, file bin/anvil). Exits 1 with a hint if it is missing.
//   ANVIL="$(node tests/tools/anvil_path.mjs)"
// Also importable: import { anvilPath } from './anvil_path.mjs'.
import { createRequire } from 'node:module';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function anvilPath() {
  const require = createRequire(import.meta.url);
  let pkg;
  try {
    pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json');
  } catch {
    throw new Error('@foundry-rs/anvil-linux-amd64 is not installed; run `npm ci` in tests/');
  }
  const bin = join(dirname(pkg), require(pkg).bin.anvil);
  accessSync(bin, constants.X_OK);
  return bin;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.stdout.write(anvilPath() + '\n');
  } catch (e) {
    process.stderr.write(`anvil_path: ${e.message}\n`);
    process.exit(1);
  }
}
