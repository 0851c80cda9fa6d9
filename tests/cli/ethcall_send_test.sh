#!/usr/bin/env bash
# ethcall send, deploy and estimate against a real node (anvil, npm), with Store compiled by solc at
# test time: keys from a file, ETH_PRIVATE_KEY and geth keystores (scrypt, pbkdf2), the node's own
# signing (--unlocked), EIP-1559 and legacy, waiting for confirmations, each failure's exit code,
# and no secret in any output.
source "$(dirname "$0")/lib.sh"
start_anvil
export ETH_RPC_URL=$ANVIL_URL
unset ETH_PRIVATE_KEY
KS=$PIPEKIT_SRC/tests/fixtures/keystore
KEY1=59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d  # in scrypt.json
KEY2=5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a  # in pbkdf2.json
DEV1=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
DEV2=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
write_dev_key
SCRYPT=(--keystore "$KS/scrypt.json" --password-file "$KS/password.txt")
PBKDF2=(--keystore "$KS/pbkdf2.json" --password-file "$KS/password.txt")

# runs CMD...: run, and keep every output for the final no-secret check.
runs() {
  run "$@"
  cat "$T/out" "$T/err" >>"$T/seen"
}
# jget PATH: a field of the JSON on stdin ("receipt.status"); strings bare.
jget() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);
    for(const k of process.argv[1].split(".").filter(Boolean))v=v==null?v:v[k];
    console.log(typeof v==="string"?v:JSON.stringify(v))})' "$1"
}
lower() { echo "$1" | tr 'A-F' 'a-f'; }

node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/Store.sol" "$T/solc" >/dev/null 2>&1 ||
  { bad "solc compiles Store.sol"; finish; exit; }
BIN=$T/solc/Store.bin ABI=$T/solc/Store.abi

# ---- deploy ----------------------------------------------------------------------------------
runs ethcall deploy --bin "$BIN" --abi "$ABI" --private-key-file "$T/key" 'first store' 42
expect "deploy with constructor args" 0
# dev account 0's first creation (nonce 0) always lands at this address
STORE=0x5FbDB2315678afecb367f032d93F642f64180aa3
case $out in '{"address":"'$STORE'","receipt":{'*'}}') ok ;; *) bad "deploy prints {address, receipt}" ;; esac
check "deploy receipt status 0x1" test "$(echo "$out" | jget receipt.status)" = 0x1
check "receipt's contractAddress is the address" test "$(echo "$out" | jget receipt.contractAddress)" = "$(lower $STORE)"
runs ethcall call $STORE 'name()(string)'
expect "constructor string arg stored" 0 '"first store"'
runs ethcall call $STORE 'value()(uint256)'
expect "constructor uint arg stored" 0 42
runs ethcall call $STORE 'owner()(address)'
expect "owner is the deployer" 0 "\"$DEV0\""

runs ethcall deploy --bin "$BIN" --abi "$ABI" --unlocked --from $DEV1 --json-args '["third store", "0x03"]'
expect "deploy --unlocked with --json-args" 0
third=$(echo "$out" | jget address)
runs ethcall call "$third" 'name()(string)'
expect "the node-signed deployment has its constructor args" 0 '"third store"'
runs ethcall call "$third" 'owner()(address)'
expect "owned by the unlocked account" 0 "\"$DEV1\""

# ---- send: each kind of key --------------------------------------------------------------------
runs ethcall send $STORE 'set(uint256)' 7 --private-key-file "$T/key"
expect "send with a key file" 0
check "its receipt has status 0x1" test "$(echo "$out" | jget status)" = 0x1
check "EIP-1559 by default" test "$(echo "$out" | jget type)" = 0x2
check "from the key's address" test "$(echo "$out" | jget from)" = "$(lower $DEV0)"
check "receipt on one line" test "$(echo "$out" | wc -l)" -eq 1
check "nothing on stderr" test -z "$err"
runs ethcall call $STORE 'value()(uint256)'
expect "state changed by send" 0 7

runs env ETH_PRIVATE_KEY=0x$KEY0 ethcall send $STORE 'set(uint256)' 8
expect "send with ETH_PRIVATE_KEY" 0
runs ethcall call $STORE 'value()(uint256)'
expect "state changed (env key)" 0 8

runs ethcall send $STORE --abi "$ABI" set 9 "${SCRYPT[@]}"
expect "send with a scrypt keystore, function by name" 0
check "from the keystore's address (scrypt)" test "$(echo "$out" | jget from)" = "$(lower $DEV1)"
runs ethcall call $STORE 'value()(uint256)'
expect "state changed (scrypt keystore)" 0 9

runs ethcall send $STORE 'set(uint256)' 10 "${PBKDF2[@]}" --from $DEV2
expect "send with a pbkdf2 keystore and a matching --from" 0
check "from the keystore's address (pbkdf2)" test "$(echo "$out" | jget from)" = "$(lower $DEV2)"
runs ethcall call $STORE 'value()(uint256)'
expect "state changed (pbkdf2 keystore)" 0 10

runs ethcall send $STORE 'set(uint256)' 11 --unlocked --from $DEV1
expect "send --unlocked --from" 0
check "from the node's account" test "$(echo "$out" | jget from)" = "$(lower $DEV1)"
runs ethcall call $STORE 'value()(uint256)'
expect "state changed (unlocked)" 0 11

runs ethcall send $STORE 'set(uint256)' 12 --legacy --private-key-file "$T/key"
expect "send --legacy" 0
check "legacy receipt type 0x0" test "$(echo "$out" | jget type)" = 0x0
hash=$(echo "$out" | jget transactionHash)
v=$(ethcall tx "$hash" | jget v)
case $v in 0xf4f5 | 0xf4f6) ok ;; *) bad "EIP-155 v = 31337*2+35+recid, got $v" ;; esac
runs ethcall call $STORE 'value()(uint256)'
expect "state changed (legacy)" 0 12

runs ethcall send $STORE 'set(uint256)' 13 --legacy --unlocked --from $DEV1
expect "send --legacy --unlocked" 0
check "node-signed legacy receipt type 0x0" test "$(echo "$out" | jget type)" = 0x0

runs ethcall send $STORE 'deposit()' --value 1000 --private-key-file "$T/key" --chain 31337
expect "send --value (decimal) with the right --chain" 0
runs ethcall send $STORE 'deposit()' --value 0x10 --private-key-file "$T/key" --chain-id 31337 --gas-price 5000000000 --priority-gas-price 2000000000 --gas-limit 100000
expect "send --value (hex) with all fees and the gas limit given" 0
runs ethcall call $STORE 'received()(uint256)'
expect "values received" 0 1016
runs ethcall send $DEV1 --value 1 --private-key-file "$T/key"
expect "plain transfer: TO without SIG" 0
check "plain transfer to the account" test "$(echo "$out" | jget to)" = "$(lower $DEV1)"

# ---- --async, then the receipt -------------------------------------------------------------------
runs ethcall send $STORE 'set(uint256)' 14 --private-key-file "$T/key" --async
expect "send --async" 0
check "--async prints only the hash" test "$(echo "$out" | grep -cE '^0x[0-9a-f]{64}$')" = 1
hash=$out
deadline=$((SECONDS + 30))
until ethcall receipt "$hash" >"$T/receipt" 2>/dev/null || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
check "the async transaction is mined" test "$(jget status <"$T/receipt")" = 0x1

# ---- confirmations --------------------------------------------------------------------------------
runs ethcall send $STORE 'set(uint256)' 15 --private-key-file "$T/key" --confirmations 2 --timeout 1s
expect "--confirmations 2 with no new block times out" 75
expect_err "names the hash to check later" "ethcall receipt 0x"
runs ethcall call $STORE 'value()(uint256)'
expect "the timed-out transaction was still mined" 0 15
ethcall send $STORE 'set(uint256)' 16 --private-key-file "$T/key" --confirmations 3 --timeout 60s >"$T/conf.out" 2>"$T/conf.err" &
sender=$!
deadline=$((SECONDS + 60))
while kill -0 $sender 2>/dev/null && [ $SECONDS -lt $deadline ]; do
  ethcall rpc evm_mine >/dev/null 2>&1
  sleep 0.2
done
wait $sender
status=$? out=$(cat "$T/conf.out") err=$(cat "$T/conf.err")
expect "--confirmations 3 returns once two more blocks are mined" 0
mined=$(echo "$out" | jget blockNumber)
check "head is at least 2 blocks past the receipt" test $(($(ethcall block-number) - mined)) -ge 2

# ---- estimate -----------------------------------------------------------------------------------
runs ethcall estimate $STORE 'set(uint256)' 5 --from $DEV0
expect "estimate" 0
expect "estimate: one plain number (a nonzero slot rewritten)" 0 26414
runs ethcall estimate $STORE --abi "$ABI" deposit --value 5
expect "estimate --abi with --value" 0
runs ethcall estimate $STORE 'divide(uint256)' 0
expect "estimate of a panic exits 1" 1
expect_err "estimate decodes the panic" "division or modulo by zero"

# ---- reverts while estimating: decoded, nothing sent ---------------------------------------------
nonce=$(ethcall nonce $DEV0)
runs ethcall send $STORE 'setBelow(uint256,uint256)' 5 1 --private-key-file "$T/key"
expect "Error(string) revert exits 1" 1
expect_err "Error(string) decoded" '"message":"value too large"'
expect_err "says nothing was sent" "nothing was sent"
runs ethcall send $STORE --abi "$ABI" ownerSet 1 "${SCRYPT[@]}"
expect "custom error exits 1" 1
expect_err "custom error decoded with --abi" '"name":"NotOwner"'
runs ethcall send $STORE 'divide(uint256)' 0 --private-key-file "$T/key"
expect "panic exits 1" 1
expect_err "panic decoded" '"meaning":"division or modulo by zero"'
runs ethcall deploy --bin "$BIN" --abi "$ABI" --private-key-file "$T/key" 'x' 1 --value 1 --gas-price 1 --priority-gas-price 2
expect "fees below the base fee: the node refuses" 1
check "no nonce used by failures" test "$(ethcall nonce $DEV0)" = "$nonce"

# ---- a failed status: receipt on stdout, reason on stderr ---------------------------------------
runs ethcall send $STORE 'setBelow(uint256,uint256)' 5 1 --private-key-file "$T/key" --gas-limit 100000
expect "status 0x0 exits 1" 1
check "the failed receipt is printed" test "$(echo "$out" | jget status)" = 0x0
expect_err "status 0x0 said" "failed (status 0x0)"
expect_err "and why (replayed)" '"message":"value too large"'
runs ethcall send $STORE 'set(uint256)' 99 --private-key-file "$T/key" --gas-limit 25000
expect "out of gas exits 1" 1
expect_err "out of gas said" "out of gas: it used all of its 25000 gas"

# ---- bad input: exit codes and messages ---------------------------------------------------------
nonce=$(ethcall nonce $DEV0)
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/no-such-key"
expect "unreadable key file" 66
expect_err "names the key file" "--private-key-file $T/no-such-key"
if [ "$(id -u)" != 0 ]; then  # root reads any file
  cp "$T/key" "$T/locked-key" && chmod 000 "$T/locked-key"
  runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/locked-key"
  expect "key file without read permission" 66
  expect_err "says why" "Permission denied"
fi
printf 'not a key at all %s\n' "zz${KEY0:2}" >"$T/badkey"
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/badkey"
expect "malformed key file" 65
expect_err "says what is wrong" "not a 32-byte hex private key"
runs env ETH_PRIVATE_KEY=0x1234 ethcall send $STORE 'set(uint256)' 1
expect "malformed ETH_PRIVATE_KEY" 65
expect_err "names the variable" "ETH_PRIVATE_KEY"
runs ethcall send $STORE 'set(uint256)' 1 --keystore "$KS/scrypt.json" --password-file "$KS/wrong_password.txt"
expect "wrong keystore password" 65
expect_err "wrong password message" "scrypt.json: wrong password or corrupt keystore (MAC mismatch)"
node -e 'const fs=require("fs"),j=JSON.parse(fs.readFileSync(process.argv[1])),c=j.crypto.ciphertext;
  j.crypto.ciphertext=(c[0]==="0"?"1":"0")+c.slice(1);fs.writeFileSync(process.argv[2],JSON.stringify(j))' \
  "$KS/pbkdf2.json" "$T/tampered.json"
check "tampered copy differs" test "$(cat "$T/tampered.json")" != "$(cat "$KS/pbkdf2.json")"
runs ethcall send $STORE 'set(uint256)' 1 --keystore "$T/tampered.json" --password-file "$KS/password.txt"
expect "tampered keystore" 65
expect_err "tampered keystore message" "MAC mismatch"
runs ethcall send $STORE 'set(uint256)' 1 --keystore "$KS/scrypt.json" --password-file "$T/no-such-password"
expect "unreadable password file" 66
expect_err "names the password file" "--password-file $T/no-such-password"
runs ethcall send $STORE 'set(uint256)' 1 --keystore "$KS/scrypt.json"
expect "--keystore without --password-file" 64
runs ethcall send $STORE 'set(uint256)' 1
expect "no key at all" 64
expect_err "lists the ways to give one" "--private-key-file"
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/key" --from $DEV1
expect "--from that is not the key's" 64
runs ethcall send $STORE 'set(uint256)' 1 --unlocked
expect "--unlocked without --from" 64
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/key" --value 1.5
expect "bad --value" 64
expect_err "names the flag" "--value"
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/key" --legacy --priority-gas-price 1
expect "--priority-gas-price with --legacy" 64
runs ethcall send $STORE 'set(uint256)' notanumber --private-key-file "$T/key"
expect "malformed argument" 65
runs ethcall send 0x1234 'set(uint256)' 1 --private-key-file "$T/key"
expect "malformed TO" 65
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/key" --chain-id 1
expect "wrong --chain-id" 78
expect_err "wrong chain said" "wrong chain: the node at $ANVIL_URL is on chain 31337, not 1"
runs ethcall send $STORE 'set(uint256)' 1 --unlocked --from $DEV1 --chain 5
expect "wrong --chain with --unlocked" 78
check "nothing sent by bad input" test "$(ethcall nonce $DEV0)" = "$nonce"
runs ethcall send $STORE 'set(uint256)' 1 --private-key-file "$T/key" --rpc-url http://127.0.0.1:1
expect "unreachable node" 69
expect_err "names the URL" "http://127.0.0.1:1"
runs ethcall estimate $STORE 'set(uint256)' 1 --rpc-url http://127.0.0.1:1
expect "estimate: unreachable node" 69
runs ethcall deploy --abi "$ABI" --private-key-file "$T/key" x 1
expect "deploy without --bin" 64
runs ethcall deploy --bin "$T/no-such.bin" --private-key-file "$T/key"
expect "deploy: missing --bin file" 66
expect_err "names the bin file" "--bin $T/no-such.bin"
echo "60806040zz" >"$T/bad.bin"
runs ethcall deploy --bin "$T/bad.bin" --private-key-file "$T/key"
expect "deploy: --bin is not hex" 65
runs ethcall deploy --bin "$BIN" --private-key-file "$T/key" 'x' 1
expect "deploy: constructor args without --abi" 64
runs ethcall deploy --bin "$BIN" --abi "$ABI" --private-key-file "$T/key" 'x'
expect "deploy: too few constructor args" 65

# ---- no secret anywhere, even in debug logs -----------------------------------------------------
runs ethcall -v send $STORE 'set(uint256)' 17 --private-key-file "$T/key"
expect "send -v" 0
expect_err "-v logs the requests" "eth_sendRawTransaction"
runs env ETH_PRIVATE_KEY=$KEY0 ethcall -v deploy --bin "$BIN" --abi "$ABI" 'second' 2
expect "deploy -v with ETH_PRIVATE_KEY" 0
runs ethcall -v send $STORE 'set(uint256)' 18 "${SCRYPT[@]}"
expect "send -v with a keystore" 0
runs ethcall -v send $STORE 'set(uint256)' 1 --keystore "$KS/pbkdf2.json" --password-file "$KS/wrong_password.txt"
expect "wrong password with -v" 65
check "outputs were collected" grep -q eth_sendRawTransaction "$T/seen"
for k in "$KEY0" "$KEY1" "$KEY2" "correct horse"; do
  if grep -qi "$k" "$T/seen"; then bad "a secret (${k:0:6}...) appears in stdout or stderr"; else ok; fi
done
finish
