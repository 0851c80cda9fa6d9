#!/usr/bin/env bash
# ethcall against a real node: anvil (npm), with CallDemo compiled by solc at test time.
source "$(dirname "$0")/lib.sh"
start_anvil
export ETH_RPC_URL=$ANVIL_URL
DEV=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266   # anvil's first dev account (its fixed test mnemonic)

run ethcall chain-id
expect "chain-id" 0 31337
run ethcall block-number
expect "block-number of a fresh chain" 0 0
run ethcall balance $DEV
expect "balance beyond 2^53 is a decimal string" 0 '"10000000000000000000000"'
run ethcall chain-id --rpc-url http://127.0.0.1:1
expect "unreachable node" 69
expect_err "names the URL" "http://127.0.0.1:1"
run env ETH_RPC_URL=http://127.0.0.1:1 ethcall chain-id --rpc-url "$ANVIL_URL"
expect "--rpc-url wins over ETH_RPC_URL" 0 31337

node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/CallDemo.sol" "$T/solc" >/dev/null 2>&1 ||
  { bad "solc compiles CallDemo.sol"; finish; exit; }
run ethcall rpc eth_sendTransaction "[{\"from\":\"$DEV\",\"data\":\"0x$(cat "$T/solc/CallDemo.bin")\"}]"
expect "deploy through the node's unlocked dev account" 0
hash=$(echo "$out" | tr -d '"')
run ethcall receipt "$hash"
expect "receipt" 0
addr=$(echo "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.status==="0x1"?r.contractAddress:"failed")})')
check "contract created" test "${addr:0:2}" = 0x
run ethcall tx "$hash"
expect "tx" 0
run ethcall call "$addr" 'get()(uint256)'
expect "CallDemo.get() returns 2020" 0 2020
run ethcall call "$addr" --abi "$T/solc/CallDemo.abi" get
expect "call by name from the ABI" 0 2020
run ethcall call "$addr" 'get()(uint256)' --raw
expect "--raw" 0 0x00000000000000000000000000000000000000000000000000000000000007e4
run ethcall call "$addr" 'get()(uint256)' --block 0
expect "at block 0 the contract did not exist: no data" 65
run ethcall rpc eth_sendTransaction "[{\"from\":\"$DEV\",\"to\":\"$addr\",\"data\":\"$(ethcall calldata 'set(uint256)' 7)\"}]"
expect "set(7)" 0
run ethcall call "$addr" 'get()(uint256)'
expect "get() after set(7)" 0 7
run ethcall nonce $DEV
expect "nonce after two transactions" 0 2
run ethcall block latest
case $out in *'"number":"0x2"'*) ok ;; *) bad "block latest is block 2" ;; esac
run ethcall rpc eth_noSuchMethod
expect "a JSON-RPC error exits 1" 1
expect_err "with its code" "JSON-RPC error -32"
run ethcall receipt 0x0000000000000000000000000000000000000000000000000000000000000001
expect "no such transaction" 1
# Reverts, decoded: Error(string), Panic, and a custom error from the ABI.
node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/Offline.sol" "$T/solc" >/dev/null 2>&1
run ethcall rpc eth_sendTransaction "[{\"from\":\"$DEV\",\"data\":\"0x$(cat "$T/solc/Offline.bin")\"}]"
off=$(ethcall receipt "$(echo "$out" | tr -d '"')" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).contractAddress))')
run ethcall call "$off" 'failWithString(string)' 'no luck'
expect "revert with Error(string) exits 1" 1
expect_err "decoded message" '"message":"no luck"'
run ethcall call "$off" 'failWithPanic(uint256)(uint256)' 0
expect "panic exits 1" 1
expect_err "panic meaning" "division or modulo by zero"
run ethcall call "$off" --abi "$T/solc/Offline.abi" requireMin 3
expect "custom error exits 1" 1
expect_err "custom error decoded from the ABI" '"name":"TooSmall"'
run ethcall call "$off" --abi "$T/solc/Offline.abi" stats '[1,5,3]'
expect "several named outputs as an object" 0 '{"count":3,"empty":false,"maximum":5,"summary":"ok","total":9}'
finish
