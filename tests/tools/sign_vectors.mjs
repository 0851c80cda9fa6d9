#!/usr/bin/env node
// Reference vectors for tests/unit/eth_sign_test.cpp, from ethers v6 (tests/package.json), and the
// keystore fixtures under tests/fixtures/keystore/. Run once; the outputs are committed.
//   node tests/tools/sign_vectors.mjs vectors            signed raw transactions, as C++ initialisers
//   node tests/tools/sign_vectors.mjs keystores <dir>    writes scrypt.json and pbkdf2.json (+ password)
// ethers encrypts keystores with scrypt only, so the pbkdf2 one is built with node:crypto by the
// keystore v3 definition and then checked by decrypting it with ethers.
import { Wallet, Transaction, keccak256, getBytes, hexlify, concat, decryptKeystoreJsonSync,
  encryptKeystoreJsonSync } from 'ethers';
import { pbkdf2Sync, createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const key0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'; // anvil dev #0
const key1 = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'; // anvil dev #1
const key2 = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a'; // anvil dev #2
const password = 'correct horse battery staple';

const long = '0x' + 'ab'.repeat(100); // data longer than 55 bytes: RLP's long form
const cases = [
  { name: 'eip1559 call', key: key0, tx: { type: 2, chainId: 31337, nonce: 0, maxPriorityFeePerGas: 1000000000n,
    maxFeePerGas: 3000000000n, gasLimit: 21000, to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', value: 1n, data: '0x' } },
  { name: 'eip1559 with data and a big value', key: key0, tx: { type: 2, chainId: 1, nonce: 1234567, maxPriorityFeePerGas: 0n,
    maxFeePerGas: 10n ** 20n, gasLimit: 300000, to: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    value: 2n ** 200n + 12345n, data: long } },
  { name: 'eip1559 contract creation', key: key1, tx: { type: 2, chainId: 31337, nonce: 7, maxPriorityFeePerGas: 1n,
    maxFeePerGas: 2n, gasLimit: 1000000, to: null, value: 0n, data: '0x6080604052348015600f57600080fd5b50' } },
  { name: 'legacy eip155 chain 1', key: key0, tx: { type: 0, chainId: 1, nonce: 9, gasPrice: 20000000000n, gasLimit: 21000,
    to: '0x3535353535353535353535353535353535353535', value: 10n ** 18n, data: '0x' } },
  { name: 'legacy eip155 chain 31337 with data', key: key2, tx: { type: 0, chainId: 31337, nonce: 0, gasPrice: 875000000n,
    gasLimit: 50000, to: '0x5FbDB2315678afecb367f032d93F642f64180aa3', value: 0n, data: long } },
  { name: 'legacy creation', key: key2, tx: { type: 0, chainId: 31337, nonce: 3, gasPrice: 1n, gasLimit: 90000,
    to: null, value: 5n, data: '0x00' } },
];

function vectors() {
  for (const c of cases) {
    const w = new Wallet(c.key);
    const tx = Transaction.from(c.tx);
    tx.signature = w.signingKey.sign(tx.unsignedHash);
    console.log(`// ${c.name}: ${JSON.stringify(c.tx, (k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    console.log(`{"${c.name}", "${tx.serialized}", "${tx.hash}"},`);
  }
  for (const k of [key0, key1, key2]) console.log(`// address of ${k}: ${new Wallet(k).address}`);
}

function pbkdf2Keystore(key, pw) {
  const salt = randomBytes(32), iv = randomBytes(16), c = 4096;
  const dk = pbkdf2Sync(Buffer.from(pw, 'utf8'), salt, c, 32, 'sha256');
  const cipher = createCipheriv('aes-128-ctr', dk.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(getBytes(key))), cipher.final()]);
  const mac = keccak256(concat([dk.subarray(16, 32), ciphertext]));
  return JSON.stringify({
    address: new Wallet(key).address.slice(2).toLowerCase(),
    id: randomUUID(), version: 3,
    crypto: {
      cipher: 'aes-128-ctr', cipherparams: { iv: iv.toString('hex') }, ciphertext: ciphertext.toString('hex'),
      kdf: 'pbkdf2', kdfparams: { c, dklen: 32, prf: 'hmac-sha256', salt: salt.toString('hex') }, mac: mac.slice(2),
    },
  });
}

function keystores(dir) {
  mkdirSync(dir, { recursive: true });
  const w1 = new Wallet(key1);
  const scrypt = encryptKeystoreJsonSync({ address: w1.address, privateKey: key1 }, password, { scrypt: { N: 1024 } });
  const pbkdf2 = pbkdf2Keystore(key2, password);
  for (const [name, json, key] of [['scrypt.json', scrypt, key1], ['pbkdf2.json', pbkdf2, key2]]) {
    if (decryptKeystoreJsonSync(json, password).privateKey !== key) throw new Error(`${name}: does not decrypt`);
    writeFileSync(join(dir, name), json + '\n');
  }
  writeFileSync(join(dir, 'password.txt'), password + '\n');
  writeFileSync(join(dir, 'wrong_password.txt'), 'correct horse battery stapler\n');
}

const [mode, dir] = process.argv.slice(2);
if (mode === 'vectors') vectors();
else if (mode === 'keystores' && dir) keystores(dir);
else { process.stderr.write('usage: sign_vectors.mjs vectors | keystores <dir>\n'); process.exit(64); }
