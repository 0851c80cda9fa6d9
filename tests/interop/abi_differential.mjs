#!/usr/bin/env node
// Differential test of ethcall's ABI codec against ethers v6 (the oracle pinned in tests/package.json).
//
//   node tests/interop/abi_differential.mjs --ethcall build/cmd/ethcall/ethcall [--count 2000] [--seed N|random]
//                                          [--show 10] [--keep DIR]
//
// It generates random ABI types and values with a seeded PRNG (the seed is printed; the default is
// fixed so that runs repeat), plus fixed cases for every integer width at its extremes, every bytesN
// and boundary lengths of bytes and string. ethers encodes each case; the expected JSON decoding is
// built in pipekit's mapping (integers as numbers below 2^53, else decimal strings; 0x lowercase hex
// for bytes; EIP-55 addresses; tuples as objects when every component is named, else arrays; a single
// top-level value bare, several as an array, or an object when all are named). ethcall then runs once
// per request kind in stdin (JSON Lines) mode:
//   abi-encode -          {"id","sig","args"}  -> {"id","result":"0x.."}   compared byte for byte
//   abi-decode --input -  {"id","sig","data"}  -> {"id","result":<json>}   compared deeply
//   keccak -              {"id","data"}        -> {"id","result":"0x.."}   vs ethers.keccak256
//   selector -            {"id","sig"}         -> {"id","result":"0x.."}   vs ethers.id(sig)[0:10]
// and once more for each of encode and decode with deliberately invalid requests, each of which
// ethers rejects too: ethcall must write no result for them, report each one, and exit 65.
// A missing, duplicated or extra id is a failure. The last line is "N passed, M failed"; the exit
// status is 0 only when M is 0 (2 when the run itself could not be done).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AbiCoder, ParamType, getAddress, id as ethersId, keccak256, version as ethersVersion } from 'ethers';

// ---------------------------------------------------------------------------------------------
// command line

function usage(msg) {
  process.stderr.write(`abi_differential: ${msg}\n` +
    'usage: node abi_differential.mjs --ethcall PATH [--count N] [--seed N|random] [--show N] [--keep DIR]\n');
  process.exit(2);
}

const DEFAULT_SEED = 20240917;
const opts = { ethcall: null, count: 2000, seed: DEFAULT_SEED, show: 10, keep: null };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--ethcall') opts.ethcall = val();
    else if (a === '--count') opts.count = Number.parseInt(val(), 10);
    else if (a === '--seed') {
      const s = val();
      opts.seed = s === 'random' ? (Math.random() * 2 ** 32) >>> 0 : Number.parseInt(s, 10) >>> 0;
    } else if (a === '--show') opts.show = Number.parseInt(val(), 10);
    else if (a === '--keep') opts.keep = val();
    else if (a === '-h' || a === '--help') usage('help');
    else usage(`unknown argument ${a}`);
  }
  if (!opts.ethcall) usage('--ethcall is required');
  if (!Number.isInteger(opts.count) || opts.count < 1) usage('--count must be a positive integer');
  opts.ethcall = resolve(opts.ethcall);
  if (!existsSync(opts.ethcall)) usage(`${opts.ethcall}: no such file`);
}

// ---------------------------------------------------------------------------------------------
// seeded PRNG: splitmix32 to seed sfc32

class Rng {
  constructor(seed) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix(); this.b = splitmix(); this.c = splitmix(); this.d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32() {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t >>> 0;
  }
  int(n) { return n <= 1 ? 0 : this.u32() % n; }                 // [0, n)
  range(lo, hi) { return lo + this.int(hi - lo + 1); }            // [lo, hi]
  chance(p) { return this.u32() / 2 ** 32 < p; }
  pick(arr) { return arr[this.int(arr.length)]; }
  bytes(n) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff; return b; }
  bigBits(bits) {                                                 // uniform in [0, 2^bits)
    let v = 0n;
    for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(this.u32());
    return v & ((1n << BigInt(bits)) - 1n);
  }
}

const rng = new Rng(opts.seed);
const coder = AbiCoder.defaultAbiCoder();

// ---------------------------------------------------------------------------------------------
// types: {k:'uint'|'int', bits} {k:'address'} {k:'bool'} {k:'bytesN', n} {k:'bytes'} {k:'string'}
//        {k:'array', el} {k:'farray', el, len} {k:'tuple', comps:[{name, t}]}

const hex = (u8) => '0x' + Buffer.from(u8).toString('hex');
const TWO53 = 2n ** 53n;

function canon(t) {
  switch (t.k) {
    case 'uint': return `uint${t.bits}`;
    case 'int': return `int${t.bits}`;
    case 'bytesN': return `bytes${t.n}`;
    case 'array': return `${canon(t.el)}[]`;
    case 'farray': return `${canon(t.el)}[${t.len}]`;
    case 'tuple': return `(${t.comps.map((c) => canon(c.t)).join(',')})`;
    default: return t.k;
  }
}

// The type as written in a signature, with component names where they exist.
function written(t) {
  switch (t.k) {
    case 'array': return `${written(t.el)}[]`;
    case 'farray': return `${written(t.el)}[${t.len}]`;
    case 'tuple': return `(${t.comps.map((c) => written(c.t) + (c.name ? ` ${c.name}` : '')).join(',')})`;
    default: return canon(t);
  }
}

// ethers ParamType JSON fragment.
function fragment(name, t) {
  let suffix = '';
  let base = t;
  while (base.k === 'array' || base.k === 'farray') {
    suffix = (base.k === 'array' ? '[]' : `[${base.len}]`) + suffix;
    base = base.el;
  }
  if (base.k === 'tuple')
    return { name, type: `tuple${suffix}`, components: base.comps.map((c) => fragment(c.name, c.t)) };
  return { name, type: canon(base) + suffix };
}

const allNamed = (list) =>
  list.length > 0 && list.every((c) => c.name) && new Set(list.map((c) => c.name)).size === list.length;

const NAMES = ['amount', 'to', 'owner', 'data', 'value', 'id', 'flag', 'items', 'inner', 'note', 'x', 'y', 'z',
  'label', 'tag', 'key', 'count', 'list', 'point', 'child', 'payload', 'recipient', 'deadline', 'nonce', 'spender'];

function names(n, mode) {                       // mode: 'all' | 'none' | 'some'
  const pool = [...NAMES];
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = pool.splice(rng.int(pool.length), 1)[0];
    out.push(mode === 'all' || (mode === 'some' && rng.chance(0.5)) ? name : '');
  }
  if (mode === 'some' && out.every((x) => x)) out[rng.int(n)] = '';
  return out;
}

const namingMode = () => { const r = rng.int(100); return r < 45 ? 'all' : r < 85 ? 'none' : 'some'; };

function elementaryType() {
  const r = rng.int(100);
  if (r < 25) return { k: 'uint', bits: 8 * rng.range(1, 32) };
  if (r < 40) return { k: 'int', bits: 8 * rng.range(1, 32) };
  if (r < 52) return { k: 'address' };
  if (r < 60) return { k: 'bool' };
  if (r < 72) return { k: 'bytesN', n: rng.range(1, 32) };
  if (r < 86) return { k: 'bytes' };
  return { k: 'string' };
}

// depth: tuple nesting left; arrDims: array dimensions already stacked directly above.
function randomType(depth, arrDims = 0) {
  const r = rng.int(100);
  if (depth <= 0 || r < 50) return elementaryType();
  if (r < 64 && arrDims < 3) return { k: 'array', el: randomType(depth - 1, arrDims + 1) };
  if (r < 78 && arrDims < 3) return { k: 'farray', el: randomType(depth - 1, arrDims + 1), len: rng.range(1, 3) };
  const n = rng.range(1, 4);
  const ns = names(n, namingMode());
  return { k: 'tuple', comps: ns.map((name) => ({ name, t: randomType(depth - 1, 0) })) };
}

// ---------------------------------------------------------------------------------------------
// values (model: BigInt, lowercase 0x-hex strings, JS strings, booleans, arrays; tuples as arrays)

const umax = (bits) => (1n << BigInt(bits)) - 1n;
const imin = (bits) => -(1n << BigInt(bits - 1));
const imax = (bits) => (1n << BigInt(bits - 1)) - 1n;

function uintExtremes(bits) {
  const v = [0n, 1n, umax(bits), umax(bits) - 1n, 1n << BigInt(bits - 1)];
  for (const x of [TWO53 - 1n, TWO53, TWO53 + 1n, 2n ** 255n - 1n]) if (x <= umax(bits)) v.push(x);
  return v;
}

function intExtremes(bits) {
  const v = [0n, 1n, -1n, imin(bits), imax(bits), imin(bits) + 1n];
  for (const x of [TWO53 - 1n, TWO53, TWO53 + 1n, -(TWO53 - 1n), -TWO53, -(TWO53 + 1n), 2n ** 255n - 1n, -(2n ** 255n)])
    if (x >= imin(bits) && x <= imax(bits)) v.push(x);
  return v;
}

const STRINGS = ['', 'a', 'hello world', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(33), 'é', 'naïve café',
  '€100', '中文字符', '😀🚀', 'mixed ✓ ascii 𝄞 and 日本', 'quote " backslash \\ slash /', 'tab\tnew\nline\r',
  '\u0001\u001f control', 'ü'.repeat(16), '𐍈'.repeat(8), 'nul\u0000inside'];
const UNICODE_CHARS = ['a', 'Z', '0', ' ', 'é', 'ß', 'Ω', 'ж', '€', '中', '日', '😀', '𝄞', '"', '\\', '\n'];

function randomString() {
  if (rng.chance(0.4)) return rng.pick(STRINGS);
  const n = rng.range(0, 40);
  let s = '';
  const ascii = rng.chance(0.5);
  for (let i = 0; i < n; i++)
    s += ascii ? String.fromCharCode(rng.range(0x20, 0x7e)) : rng.pick(UNICODE_CHARS);
  return s;
}

function randomBytesLen() {
  return rng.chance(0.4) ? rng.pick([0, 1, 31, 32, 33, 63, 64, 65, 100]) : rng.range(0, 100);
}

function randomValue(t) {
  switch (t.k) {
    case 'uint':
      return rng.chance(0.35) ? rng.pick(uintExtremes(t.bits)) : rng.bigBits(rng.range(1, t.bits));
    case 'int': {
      if (rng.chance(0.35)) return rng.pick(intExtremes(t.bits));
      const mag = rng.bigBits(rng.range(1, t.bits - 1 || 1));
      return rng.chance(0.5) ? -mag : mag;
    }
    case 'address': return hex(rng.chance(0.05) ? new Uint8Array(20) : rng.bytes(20));
    case 'bool': return rng.chance(0.5);
    case 'bytesN': return hex(rng.bytes(t.n));
    case 'bytes': return hex(rng.bytes(randomBytesLen()));
    case 'string': return randomString();
    case 'array': return Array.from({ length: rng.range(0, 3) }, () => randomValue(t.el));
    case 'farray': return Array.from({ length: t.len }, () => randomValue(t.el));
    case 'tuple': return t.comps.map((c) => randomValue(c.t));
  }
  throw new Error(`unknown type ${t.k}`);
}

// ethers input (tuples as arrays, integers as BigInt).
const toEthers = (t, v) => v;

// pipekit's JSON output mapping.
function expected(t, v) {
  switch (t.k) {
    case 'uint': case 'int': return (v < TWO53 && v > -TWO53) ? Number(v) : v.toString();
    case 'address': return getAddress(v);
    case 'array': case 'farray': return v.map((x) => expected(t.el, x));
    case 'tuple':
      if (allNamed(t.comps)) return Object.fromEntries(t.comps.map((c, i) => [c.name, expected(c.t, v[i])]));
      return t.comps.map((c, i) => expected(c.t, v[i]));
    default: return v;
  }
}

const upperHex = (h) => '0x' + h.slice(2).toUpperCase();

// pipekit's JSON input mapping, in the varied forms it documents.
function argJson(t, v) {
  switch (t.k) {
    case 'uint': {
      const r = rng.int(100);
      if (r < 15) return '0x' + v.toString(16);
      if (r < 22) return v.toString();
      return expected(t, v);
    }
    case 'int': {
      const r = rng.int(100);
      if (r < 6) return (v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16));
      if (r < 14) return v.toString();
      return expected(t, v);
    }
    case 'address': {
      const r = rng.int(100);
      if (r < 20) return v;                                  // all lowercase
      if (r < 30) return upperHex(v);                        // all uppercase digits
      return getAddress(v);                                  // EIP-55
    }
    case 'bytesN': case 'bytes': return rng.chance(0.1) ? upperHex(v) : v;
    case 'array': case 'farray': return v.map((x) => argJson(t.el, x));
    case 'tuple':
      if (allNamed(t.comps) && rng.chance(0.5))
        return Object.fromEntries(t.comps.map((c, i) => [c.name, argJson(c.t, v[i])]));
      return t.comps.map((c, i) => argJson(c.t, v[i]));
    default: return v;
  }
}

// The same mapping applied to what ethers decodes: a check on this script's own model.
function shapeEthers(t, d) {
  switch (t.k) {
    case 'uint': case 'int': return expected(t, d);
    case 'address': return d;                                  // ethers decodes to EIP-55 already
    case 'array': case 'farray': return [...d].map((x) => shapeEthers(t.el, x));
    case 'tuple': {
      const items = [...d];
      if (allNamed(t.comps)) return Object.fromEntries(t.comps.map((c, i) => [c.name, shapeEthers(c.t, items[i])]));
      return t.comps.map((c, i) => shapeEthers(c.t, items[i]));
    }
    default: return d;
  }
}

// ---------------------------------------------------------------------------------------------
// cases

// params: [{name, t}]
function sigOf(params) {
  return `(${params.map((p) => written(p.t) + (p.name ? ` ${p.name}` : '')).join(',')})`;
}

function shapeTop(params, values) {
  if (params.length === 1) return values[0];
  if (allNamed(params)) return Object.fromEntries(params.map((p, i) => [p.name, values[i]]));
  return values;
}

function makeCase(params, values, origin) {
  const types = params.map((p) => ParamType.from(fragment(p.name, p.t)));
  const data = coder.encode(types, values.map((v, i) => toEthers(params[i].t, v)));
  const exp = shapeTop(params, values.map((v, i) => expected(params[i].t, v)));
  // Self-check: ethers decodes its own encoding to the same expectation.
  const back = coder.decode(types, data);
  const viaEthers = shapeTop(params, params.map((p, i) => shapeEthers(p.t, back[i])));
  const diff = firstDifference(exp, viaEthers);
  if (diff) throw new Error(`generator self-check failed for ${sigOf(params)} (${origin}): ${diff}`);
  let args = values.map((v, i) => argJson(params[i].t, v));
  if (allNamed(params) && rng.chance(0.3)) args = Object.fromEntries(params.map((p, i) => [p.name, args[i]]));
  return { sig: sigOf(params), canonical: `(${params.map((p) => canon(p.t)).join(',')})`, params, args, data, expected: exp, origin };
}

function fixedCases() {
  const out = [];
  for (let bits = 8; bits <= 256; bits += 8) {
    const u = { k: 'uint', bits };
    const s = { k: 'int', bits };
    for (const v of uintExtremes(bits)) out.push(makeCase([{ name: '', t: u }], [v], `uint${bits} extreme`));
    for (const v of intExtremes(bits)) out.push(makeCase([{ name: '', t: s }], [v], `int${bits} extreme`));
  }
  for (let n = 1; n <= 32; n++) {
    const t = { k: 'bytesN', n };
    out.push(makeCase([{ name: '', t }], [hex(rng.bytes(n))], `bytes${n}`));
    out.push(makeCase([{ name: 'v', t }, { name: 'w', t: { k: 'bytes' } }], [hex(new Uint8Array(n)), hex(rng.bytes(n))], `bytes${n} pair`));
  }
  for (const len of [0, 1, 2, 31, 32, 33, 63, 64, 65, 100])
    out.push(makeCase([{ name: '', t: { k: 'bytes' } }], [hex(rng.bytes(len))], `bytes len ${len}`));
  for (const s of STRINGS) out.push(makeCase([{ name: '', t: { k: 'string' } }], [s], 'string'));
  out.push(makeCase([{ name: '', t: { k: 'address' } }], ['0x' + '00'.repeat(20)], 'zero address'));
  out.push(makeCase([{ name: '', t: { k: 'address' } }], ['0x' + 'ff'.repeat(20)], 'max address'));
  out.push(makeCase([{ name: 'a', t: { k: 'bool' } }, { name: 'b', t: { k: 'bool' } }], [true, false], 'bools'));
  // fixed arrays of dynamic types, arrays of tuples, depth-3 arrays
  const tagT = { k: 'tuple', comps: [{ name: 'name', t: { k: 'string' } }, { name: 'code', t: { k: 'bytesN', n: 3 } }, { name: 'payload', t: { k: 'bytes' } }] };
  const pointT = { k: 'tuple', comps: [{ name: 'x', t: { k: 'int', bits: 8 } }, { name: 'y', t: { k: 'uint', bits: 24 } }] };
  const shapes = [
    [{ name: '', t: { k: 'farray', el: { k: 'string' }, len: 2 } }],
    [{ name: '', t: { k: 'farray', el: { k: 'bytes' }, len: 3 } }],
    [{ name: '', t: { k: 'farray', el: { k: 'array', el: { k: 'uint', bits: 8 } }, len: 2 } }],
    [{ name: 'tags', t: { k: 'farray', el: tagT, len: 2 } }, { name: 'points', t: { k: 'array', el: pointT } }],
    [{ name: '', t: { k: 'array', el: { k: 'array', el: { k: 'array', el: { k: 'uint', bits: 256 } } } } }],
    [{ name: '', t: { k: 'farray', el: { k: 'array', el: { k: 'farray', el: { k: 'string' }, len: 2 } }, len: 2 } }],
    [{ name: '', t: { k: 'tuple', comps: [{ name: '', t: { k: 'uint', bits: 256 } }, { name: '', t: { k: 'array', el: { k: 'tuple', comps: [{ name: '', t: { k: 'address' } }, { name: '', t: { k: 'bytes' } }] } } }] } }],
  ];
  for (const params of shapes)
    for (let i = 0; i < 5; i++) out.push(makeCase(params, params.map((p) => randomValue(p.t)), 'shape'));
  return out;
}

function randomCase() {
  const n = rng.chance(0.1) ? rng.range(5, 6) : rng.range(1, 4);
  const ns = names(n, namingMode());
  const params = ns.map((name) => ({ name, t: randomType(rng.range(0, 4)) }));
  return makeCase(params, params.map((p) => randomValue(p.t)), 'random');
}

// ---------------------------------------------------------------------------------------------
// invalid requests, each verified to make ethers throw too

function ethersThrows(params, ethersValues) {
  try {
    coder.encode(params.map((p) => ParamType.from(fragment(p.name, p.t))), ethersValues);
    return false;
  } catch {
    return true;
  }
}

function flipChecksumCase(addr) {
  const cs = getAddress(addr);
  const letters = [...cs.slice(2)].map((c, i) => (/[a-fA-F]/.test(c) ? i : -1)).filter((i) => i >= 0);
  if (letters.length < 2) return null;
  const i = rng.pick(letters) + 2;
  const c = cs[i];
  const bad = cs.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + cs.slice(i + 1);
  const body = bad.slice(2);
  if (body === body.toLowerCase() || body === body.toUpperCase()) return null;   // those are valid forms
  return bad;
}

// One invalid leaf: {t, json, eth, why}.
function invalidLeaf() {
  const r = rng.int(9);
  const bits = 8 * rng.range(1, 32);
  switch (r) {
    case 0: {                                                       // uint out of range
      const v = rng.pick([umax(bits) + 1n, umax(bits) + 1n + rng.bigBits(16), -1n, -(1n + rng.bigBits(8))]);
      return { t: { k: 'uint', bits }, json: expected({ k: 'uint' }, v), eth: v, why: `uint${bits} out of range`, cls: 'uint out of range' };
    }
    case 1: {                                                       // int out of range
      const v = rng.pick([imax(bits) + 1n, imin(bits) - 1n, imax(bits) + 1n + rng.bigBits(8), imin(bits) - 1n - rng.bigBits(8)]);
      return { t: { k: 'int', bits }, json: expected({ k: 'int' }, v), eth: v, why: `int${bits} out of range`, cls: 'int out of range' };
    }
    case 2: {                                                       // bytesN of the wrong length
      const n = rng.range(1, 32);
      const len = rng.pick([n - 1, n + 1, n + rng.range(2, 10), 0].filter((x) => x !== n && x >= 0));
      const v = hex(rng.bytes(len));
      return { t: { k: 'bytesN', n }, json: v, eth: v, why: `bytes${n} given ${len} bytes`, cls: 'bytesN wrong length' };
    }
    case 3: {                                                       // bad EIP-55 checksum
      let bad = null;
      while (!bad) bad = flipChecksumCase(hex(rng.bytes(20)));
      return { t: { k: 'address' }, json: bad, eth: bad, why: 'address with a bad checksum', cls: 'bad checksum' };
    }
    case 4: {                                                       // T[k] with the wrong length
      const len = rng.range(1, 4);
      const el = rng.pick([{ k: 'uint', bits: 256 }, { k: 'string' }, { k: 'address' }, { k: 'bytes' }]);
      const wrong = rng.pick([len - 1, len + 1]);
      const v = Array.from({ length: wrong }, () => randomValue(el));
      return { t: { k: 'farray', el, len }, json: v.map((x) => expected(el, x)), eth: v, why: `${canon(el)}[${len}] given ${wrong} elements`, cls: 'T[k] wrong length' };
    }
    case 5: {                                                       // integer: wrong JSON type
      const v = rng.pick(['abc', [1], { v: 1 }, true, null, 1.5, '1.5', '', '0xzz', '12abc']);
      return { t: { k: 'uint', bits: 256 }, json: v, eth: v, why: `uint256 given ${JSON.stringify(v)}`, cls: 'integer wrong JSON' };
    }
    case 6: {                                                       // string/bytes: wrong JSON type
      const t = rng.pick([{ k: 'string' }, { k: 'bytes' }, { k: 'bytesN', n: 4 }]);
      const v = rng.pick([42, [1, 2], { a: 1 }, null]);
      return { t, json: v, eth: v, why: `${canon(t)} given ${JSON.stringify(v)}`, cls: 'string/bytes wrong JSON' };
    }
    case 7: {                                                       // address: wrong type or form
      const v = rng.pick([123, null, '0x1234', '0x' + 'g'.repeat(40), 'ab'.repeat(20), '0x' + 'ab'.repeat(21), []]);
      return { t: { k: 'address' }, json: v, eth: v, why: `address given ${JSON.stringify(v)}`, cls: 'address wrong form' };
    }
    default: {                                                      // array: wrong JSON type
      const el = { k: 'uint', bits: 8 };
      const v = rng.pick(['1,2', 7, { 0: 1 }, null]);
      return { t: { k: 'array', el }, json: v, eth: v, why: `uint8[] given ${JSON.stringify(v)}`, cls: 'array wrong JSON' };
    }
  }
}

// Places an invalid leaf at the top level, inside a tuple, inside an array, or beside other params.
function invalidCase() {
  for (;;) {
    const leaf = invalidLeaf();
    let params, json, eth, where;
    const w = rng.int(4);
    if (w === 0) {
      params = [{ name: '', t: leaf.t }];
      json = [leaf.json]; eth = [leaf.eth]; where = 'top level';
    } else if (w === 1) {
      const other = randomType(1);
      const ov = randomValue(other);
      const named = rng.chance(0.5);
      const t = { k: 'tuple', comps: [{ name: named ? 'ok' : '', t: other }, { name: named ? 'bad' : '', t: leaf.t }] };
      params = [{ name: '', t }];
      json = [named && rng.chance(0.5) ? { ok: argJson(other, ov), bad: leaf.json } : [argJson(other, ov), leaf.json]];
      eth = [[ov, leaf.eth]]; where = 'in a tuple';
    } else if (w === 2) {
      const t = { k: 'array', el: leaf.t };
      // Valid siblings, except beside a wrongly sized T[k] (a random T[k] value would be valid).
      const goodOk = leaf.t.k === 'farray' ? [] : Array.from({ length: rng.range(0, 2) }, () => randomValue(leaf.t));
      params = [{ name: '', t }];
      json = [[...goodOk.map((x) => argJson(leaf.t, x)), leaf.json]];
      eth = [[...goodOk, leaf.eth]]; where = 'in an array';
    } else {
      const other = randomType(2);
      const ov = randomValue(other);
      params = [{ name: 'first', t: other }, { name: 'second', t: leaf.t }];
      json = rng.chance(0.5) ? [argJson(other, ov), leaf.json] : { first: argJson(other, ov), second: leaf.json };
      eth = [ov, leaf.eth]; where = 'second param';
    }
    if (!ethersThrows(params, eth)) continue;                      // only inputs ethers rejects too
    return { sig: sigOf(params), args: json, why: `${leaf.why} (${where})`, cls: leaf.cls };
  }
}

// Malformed data for decoding, each verified to make ethers throw.
function invalidDecodeCase() {
  for (;;) {
    const c = randomCase();
    const bytes = Buffer.from(c.data.slice(2), 'hex');
    if (bytes.length === 0) continue;
    const r = rng.int(3);
    let data, why;
    if (r === 0) { data = hex(bytes.subarray(0, rng.int(bytes.length))); why = 'truncated'; }
    else if (r === 1) { data = '0x'; why = 'empty data'; }
    else {                                                          // an offset/length word made huge
      const words = bytes.length / 32;
      const b = Buffer.from(bytes);
      const w = rng.int(words);
      b.fill(0xff, w * 32, w * 32 + 28);
      data = hex(b); why = `word ${w} set to a huge value`;
    }
    let threw = false;
    try { coder.decode(c.params.map((p) => ParamType.from(fragment(p.name, p.t))), data); } catch { threw = true; }
    if (!threw) continue;
    return { sig: c.sig, data, why, cls: why.startsWith('word') ? 'huge offset/length' : why };
  }
}

// ---------------------------------------------------------------------------------------------
// comparing

function firstDifference(exp, act, path = '$') {
  const kind = (x) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
  if (kind(exp) !== kind(act)) return `${path}: expected ${kind(exp)} ${JSON.stringify(exp)}, got ${kind(act)} ${JSON.stringify(act)}`;
  if (Array.isArray(exp)) {
    if (exp.length !== act.length) return `${path}: expected ${exp.length} elements, got ${act.length}`;
    for (let i = 0; i < exp.length; i++) {
      const d = firstDifference(exp[i], act[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (kind(exp) === 'object') {
    const ek = Object.keys(exp).sort(), ak = Object.keys(act).sort();
    if (JSON.stringify(ek) !== JSON.stringify(ak)) return `${path}: expected keys ${ek.join(',')}, got ${ak.join(',')}`;
    for (const k of ek) {
      const d = firstDifference(exp[k], act[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return exp === act ? null : `${path}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`;
}

// Numbers written with a fraction or exponent ("1.2e4") anywhere outside strings.
function hasNonIntegerNumber(text) {
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') { inStr = true; continue; }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j])) j++;
      if (/[.eE]/.test(text.slice(i, j))) return true;
      i = j - 1;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// running ethcall

const work = mkdtempSync(join(tmpdir(), 'abi-differential-'));
const keep = opts.keep ? resolve(opts.keep) : null;
if (keep) mkdirSync(keep, { recursive: true });

// Runs `ethcall <args> -` on the requests; returns per-id results and per-line rejects.
function runEthcall(name, args, requests) {
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const rejectsFile = join(work, `${name}.rejects.jsonl`);
  if (keep) writeFileSync(join(keep, `${name}.in.jsonl`), input);
  const argv = [...args, '--rejects', rejectsFile, '-'];
  const t0 = process.hrtime.bigint();
  const p = spawnSync(opts.ethcall, argv, { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // EPIPE: ethcall stopped reading (it crashed or quit early); what it wrote is still judged.
  if (p.error && p.error.code !== 'EPIPE') throw new Error(`ethcall ${argv.join(' ')}: ${p.error.message}`);
  const stdout = p.stdout ?? '';
  const stderr = p.stderr ?? '';
  if (keep) {
    writeFileSync(join(keep, `${name}.out.jsonl`), stdout);
    writeFileSync(join(keep, `${name}.err.txt`), stderr);
    if (existsSync(rejectsFile)) writeFileSync(join(keep, `${name}.rejects.jsonl`), readFileSync(rejectsFile));
  }
  const results = new Map();
  const problems = [];                                   // output lines that are not well-formed answers
  if (p.error) problems.push(`ethcall stopped reading its input (${p.error.code}), exit ${p.status ?? p.signal}: ${stderr.slice(-600)}`);
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    let rec;
    try { rec = JSON.parse(line); } catch { problems.push(`stdout line is not JSON: ${line.slice(0, 200)}`); continue; }
    if (rec === null || typeof rec !== 'object' || !('id' in rec) || !('result' in rec)) {
      problems.push(`stdout line without id/result: ${line.slice(0, 200)}`);
      continue;
    }
    if (results.has(rec.id)) problems.push(`id ${rec.id} answered twice`);
    results.set(rec.id, { result: rec.result, raw: line });
  }
  // Rejects by input line number: JSON records from --rejects, and "...stdin:N: reason" log lines.
  const rejects = new Map();
  if (existsSync(rejectsFile))
    for (const line of readFileSync(rejectsFile, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line);
        if (Number.isInteger(r.line)) rejects.set(r.line, r.error ?? r.code ?? line);
      } catch { /* not JSON: ignored, the stderr log has it too */ }
    }
  for (const line of stderr.split('\n')) {
    const m = /stdin:(\d+): (.*)$/.exec(line);
    if (m && !rejects.has(Number(m[1]))) rejects.set(Number(m[1]), m[2]);
    else if (line.startsWith('{')) {
      try {
        const r = JSON.parse(line);
        if (Number.isInteger(r.line) && !rejects.has(r.line)) rejects.set(r.line, r.error ?? line);
      } catch { /* a log line */ }
    }
  }
  return { results, rejects, problems, status: p.status, signal: p.signal, stderr, ms };
}

// ---------------------------------------------------------------------------------------------
// main

let passed = 0;
let failed = 0;
const failures = [];
function fail(kind, detail) {
  failed++;
  failures.push({ kind, ...detail });
}

const short = (x, n = 400) => { const s = typeof x === 'string' ? x : JSON.stringify(x); return s.length > n ? s.slice(0, n) + `... (${s.length} chars)` : s; };

process.stdout.write(`abi_differential: seed ${opts.seed} (rerun with --seed ${opts.seed}), count ${opts.count}, ethers ${ethersVersion}\n`);

try {
  const t0 = Date.now();
  const cases = [...fixedCases()];
  for (let i = 0; i < opts.count; i++) cases.push(randomCase());
  const negEncode = Array.from({ length: 300 }, invalidCase);
  const negDecode = Array.from({ length: 100 }, invalidDecodeCase);
  const keccakCases = [];
  for (let i = 0; i < 500; i++) {
    const len = rng.chance(0.3) ? rng.pick([0, 1, 31, 32, 33, 55, 56, 64, 135, 136, 137, 200, 271, 272, 273, 1000]) : rng.range(0, 300);
    keccakCases.push(hex(rng.bytes(len)));
  }
  const selectorCases = cases.map((c, i) => {
    const fname = rng.pick(['transfer', 'f', 'multicall', 'swap', '_x', 'get$', 'set_value', 'g0']) + (i % 97);
    const canonical = `${fname}${c.canonical}`;
    // Some signatures are written the way people write them: names, spaces, "function" keyword.
    let text = canonical;
    const r = rng.int(10);
    if (r === 0) text = `function ${fname}${c.sig.replace(/,/g, ', ')} external`;
    else if (r === 1) text = `${fname}${c.sig}`;
    return { text, canonical };
  });
  process.stdout.write(`generated ${cases.length} cases, ${negEncode.length}+${negDecode.length} invalid, ` +
    `${keccakCases.length} keccak, ${selectorCases.length} selectors in ${Date.now() - t0} ms\n`);
  const tally = (list) => Object.entries(list.reduce((m, c) => ((m[c.cls] = (m[c.cls] ?? 0) + 1), m), {}))
    .map(([k, n]) => `${k} ${n}`).join(', ');
  process.stdout.write(`invalid encode inputs: ${tally(negEncode)}\ninvalid decode inputs: ${tally(negDecode)}\n`);

  const runs = [];
  // --- encode
  {
    const reqs = cases.map((c, i) => ({ id: i, sig: c.sig, args: c.args }));
    const r = runEthcall('abi-encode', ['abi-encode'], reqs);
    runs.push(['abi-encode', r, reqs.length]);
    cases.forEach((c, i) => {
      const got = r.results.get(i);
      if (!got) return fail('abi-encode', { id: i, sig: c.sig, args: c.args, expected: c.data, actual: `no result (${r.rejects.get(i + 1) ?? 'no reject either'})` });
      if (got.result !== c.data) return fail('abi-encode', { id: i, sig: c.sig, args: c.args, expected: c.data, actual: got.result });
      passed++;
    });
    if (r.status !== 0) fail('abi-encode', { id: '-', actual: `exit status ${r.status ?? r.signal}, expected 0`, stderr: r.stderr.slice(-800) });
    r.problems.forEach((p) => fail('abi-encode', { id: '-', actual: p }));
  }
  // --- decode
  {
    const reqs = cases.map((c, i) => ({ id: i, sig: c.sig, data: c.data }));
    const r = runEthcall('abi-decode', ['abi-decode', '--input'], reqs);
    runs.push(['abi-decode', r, reqs.length]);
    cases.forEach((c, i) => {
      const got = r.results.get(i);
      if (!got) return fail('abi-decode', { id: i, sig: c.sig, data: c.data, expected: c.expected, actual: `no result (${r.rejects.get(i + 1) ?? 'no reject either'})` });
      const d = firstDifference(c.expected, got.result);
      if (d) return fail('abi-decode', { id: i, sig: c.sig, data: c.data, expected: c.expected, actual: got.result, diff: d });
      if (hasNonIntegerNumber(got.raw)) return fail('abi-decode', { id: i, sig: c.sig, expected: c.expected, actual: got.raw, diff: 'a number written with a fraction or exponent' });
      passed++;
    });
    if (r.status !== 0) fail('abi-decode', { id: '-', actual: `exit status ${r.status ?? r.signal}, expected 0`, stderr: r.stderr.slice(-800) });
    r.problems.forEach((p) => fail('abi-decode', { id: '-', actual: p }));
  }
  // --- keccak
  {
    const reqs = keccakCases.map((data, i) => ({ id: i, data }));
    const r = runEthcall('keccak', ['keccak'], reqs);
    runs.push(['keccak', r, reqs.length]);
    keccakCases.forEach((data, i) => {
      const exp = keccak256(data);
      const got = r.results.get(i);
      if (!got) return fail('keccak', { id: i, data, expected: exp, actual: `no result (${r.rejects.get(i + 1) ?? 'no reject either'})` });
      if (got.result !== exp) return fail('keccak', { id: i, data, expected: exp, actual: got.result });
      passed++;
    });
    if (r.status !== 0) fail('keccak', { id: '-', actual: `exit status ${r.status ?? r.signal}, expected 0`, stderr: r.stderr.slice(-800) });
    r.problems.forEach((p) => fail('keccak', { id: '-', actual: p }));
  }
  // --- selector
  {
    const reqs = selectorCases.map((s, i) => ({ id: i, sig: s.text }));
    const r = runEthcall('selector', ['selector'], reqs);
    runs.push(['selector', r, reqs.length]);
    selectorCases.forEach((s, i) => {
      const exp = ethersId(s.canonical).slice(0, 10);
      const got = r.results.get(i);
      if (!got) return fail('selector', { id: i, sig: s.text, expected: `${exp} for ${s.canonical}`, actual: `no result (${r.rejects.get(i + 1) ?? 'no reject either'})` });
      if (got.result !== exp) return fail('selector', { id: i, sig: s.text, expected: `${exp} for ${s.canonical}`, actual: got.result });
      passed++;
    });
    if (r.status !== 0) fail('selector', { id: '-', actual: `exit status ${r.status ?? r.signal}, expected 0`, stderr: r.stderr.slice(-800) });
    r.problems.forEach((p) => fail('selector', { id: '-', actual: p }));
  }
  // --- invalid inputs: every one rejected, none answered, exit 65
  for (const [name, args, list, key] of [
    ['abi-encode-invalid', ['abi-encode'], negEncode, 'args'],
    ['abi-decode-invalid', ['abi-decode', '--input'], negDecode, 'data'],
  ]) {
    const reqs = list.map((c, i) => ({ id: i, sig: c.sig, [key]: c[key] }));
    const r = runEthcall(name, args, reqs);
    runs.push([name, r, reqs.length]);
    list.forEach((c, i) => {
      const got = r.results.get(i);
      if (got) return fail(name, { id: i, sig: c.sig, [key]: c[key], expected: `a reject: ${c.why}`, actual: got.result });
      if (!r.rejects.has(i + 1)) return fail(name, { id: i, sig: c.sig, [key]: c[key], expected: `a reject: ${c.why}`, actual: 'no result and no reject reported for its line' });
      passed++;
    });
    if (r.status !== 65) fail(name, { id: '-', actual: `exit status ${r.status ?? r.signal}, expected 65`, stderr: r.stderr.slice(-800) });
    r.problems.forEach((p) => fail(name, { id: '-', actual: p }));
  }

  for (const [name, r, n] of runs)
    process.stdout.write(`  ${name.padEnd(20)} ${String(n).padStart(5)} requests  ${r.results.size} results  ${r.rejects.size} rejects  exit ${r.status}  ${r.ms.toFixed(0)} ms\n`);
} catch (e) {
  process.stderr.write(`abi_differential: ${e.stack ?? e}\n`);
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`${passed} passed, ${failed + 1} failed\n`);
  process.exit(2);
}

if (failures.length > 0) {
  process.stdout.write(`\nfirst ${Math.min(opts.show, failures.length)} of ${failures.length} failures:\n`);
  for (const f of failures.slice(0, opts.show)) {
    process.stdout.write(`--- ${f.kind} id ${f.id}\n`);
    if (f.sig !== undefined) process.stdout.write(`  sig:      ${f.sig}\n`);
    if (f.args !== undefined) process.stdout.write(`  args:     ${short(f.args)}\n`);
    if (f.data !== undefined) process.stdout.write(`  data:     ${short(f.data)}\n`);
    if (f.expected !== undefined) process.stdout.write(`  expected: ${short(f.expected)}\n`);
    process.stdout.write(`  actual:   ${short(f.actual)}\n`);
    if (f.diff) process.stdout.write(`  diff:     ${f.diff}\n`);
    if (f.stderr) process.stdout.write(`  stderr:   ${f.stderr.trimEnd().split('\n').join('\n            ')}\n`);
  }
  process.stdout.write(`(seed ${opts.seed}${keep ? `; requests and outputs kept in ${keep}` : '; --keep DIR keeps requests and outputs'})\n`);
}
rmSync(work, { recursive: true, force: true });
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
