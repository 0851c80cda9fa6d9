#!/usr/bin/env bash
# ethcall over its three transports (HTTP, WebSocket, IPC) and ethcall batch, against anvil.
source "$(dirname "$0")/lib.sh"
start_anvil --ipc "$T/anvil.ipc"
WS_URL=ws://${ANVIL_URL#http://}
IPC=$T/anvil.ipc
export ETH_RPC_URL=$ANVIL_URL
DEV=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

deadline=$((SECONDS + 30))
while [ ! -S "$IPC" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
check "anvil opened its IPC socket" test -S "$IPC"

# deploy NAME: compiles tests/fixtures/contracts/NAME.sol (once) and deploys it from the dev
# account; prints the address.
deploy() {
  [ -f "$T/solc/$1.bin" ] || node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/$1.sol" "$T/solc" >/dev/null 2>&1 || return 1
  local hash
  hash=$(ethcall rpc eth_sendTransaction "[{\"from\":\"$DEV\",\"data\":\"0x$(cat "$T/solc/$1.bin")\"}]" | tr -d '"') || return 1
  ethcall receipt "$hash" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(r.status!=="0x1")process.exit(1);console.log(r.contractAddress)})'
}
CALLDEMO=$(deploy CallDemo) || { bad "deploy CallDemo"; finish; exit; }
DEMO=$(deploy BatchDemo) || { bad "deploy BatchDemo"; finish; exit; }
ABI=$T/solc/BatchDemo.abi

# --- the same call over each transport ---
for url in "$ANVIL_URL" "$WS_URL" "$IPC" "ipc://$IPC"; do
  run ethcall call "$CALLDEMO" 'get()(uint256)' --rpc-url "$url"
  expect "CallDemo.get() over $url" 0 2020
done
run ethcall rpc eth_nope '[]' --rpc-url "$WS_URL"
expect "JSON-RPC error over ws" 1
expect_err "its message" "JSON-RPC error"
run ethcall call "$DEMO" 'ratio(uint256,uint256)(uint256)' 1 0 --rpc-url "$IPC"
expect "a revert over IPC" 1
expect_err "decoded" "division or modulo by zero"
run env ETH_RPC_URL="$WS_URL" ethcall chain-id
expect "ETH_RPC_URL may be a ws:// URL" 0 31337

# Unreachable and hung nodes: 69, naming the URL.
dead=$(free_port)
run ethcall chain-id --rpc-url "ws://127.0.0.1:$dead"
expect "ws: connection refused" 69
expect_err "names the URL" "ws://127.0.0.1:$dead"
run ethcall chain-id --rpc-url "$T/no-such.ipc"
expect "ipc: no socket" 69
expect_err "names the path" "$T/no-such.ipc"
run ethcall chain-id --rpc-url "ftp://127.0.0.1/"
expect "unsupported scheme" 64
freeze "$ANVIL_PID"
for url in "$ANVIL_URL" "$WS_URL" "$IPC"; do
  start=$SECONDS
  run ethcall block-number --rpc-url "$url" --rpc-timeout 300ms
  expect "a node that does not answer: $url" 69
  expect_err "says it timed out" "$url"
  check "gives up within the retries' deadline ($url)" test $((SECONDS - start)) -lt 10
done
kill -CONT "$ANVIL_PID"
run ethcall block-number --rpc-url "$IPC"
expect "the node answers again" 0

# --- batch: each kind of line, output in input order ---
cat >"$T/calls.jsonl" <<EOF
{"to":"$DEMO","sig":"get()(uint256)"}
{"id":"sq","to":"$DEMO","sig":"square(uint256,bool)(uint256)","args":[12,false]}
{"to":"$DEMO","sig":"square(uint256,bool)(uint256)","args":["340282366920938463463374607431768211456",false]}
{"to":"$DEMO","function":"square","abi":"$ABI","args":[2000000,true]}
{"to":"$DEMO","sig":"ratio(uint256,uint256)(uint256)","args":[1,0]}
not json

{"to":"$DEMO","sig":"pair(uint256)(uint256 doubled,string label)","args":[21]}
{"to":"$DEMO","sig":"bad("}
{"to":"$DEMO","sig":"get()(uint256)","block":0}
{"id":[1],"to":"$DEMO","function":"pair","args":{"x":5}}
{"to":"$DEMO","function":"nope","abi":"$T/missing.abi"}
EOF
want='{"id":1,"result":2020}
{"id":"sq","result":144}
{"id":3,"error":{"code":3,"message":"execution reverted: x too large","revert":{"kind":"error","message":"x too large","signature":"Error(string)"}}}
{"id":4,"error":{"code":3,"message":"execution reverted: custom error 0x6ad9cdfc: 00000000000000000000000000000000000000000000000000000000001e848000000000000000000000000000000000000000000000000000000000000f4240","revert":{"args":{"limit":1000000,"value":2000000},"kind":"custom","name":"TooBig","signature":"TooBig(uint256,uint256)"}}}
{"id":5,"error":{"code":3,"message":"execution reverted: panic: division or modulo by zero (0x12)","revert":{"code":18,"code_hex":"0x12","kind":"panic","meaning":"division or modulo by zero"}}}
{"id":6,"error":{"code":-32700,"message":"invalid JSON at column 2: invalid literal; last read: '"'"'no'"'"'"}}
{"id":8,"result":{"doubled":42,"label":"pair"}}
{"id":9,"error":{"code":-32602,"message":"malformed signature at column 5: expected a type, found the end"}}
{"id":10,"error":{"code":-32603,"message":"cannot decode the result 0x: value 1 (uint256): data too short: need 32 bytes at byte 0, have 0 bytes"}}
{"id":[1],"result":{"doubled":10,"label":"pair"}}'
run ethcall batch --abi "$ABI" --input "$T/calls.jsonl"
expect "batch: results, reverts decoded, bad lines answered, in order" 65 "$want
{\"id\":12,\"error\":{\"code\":-32602,\"message\":\"field \\\"abi\\\": $T/missing.abi: cannot open: No such file or directory\"}}"
expect_err "a bad line is reported with its line number" "$T/calls.jsonl:6: invalid JSON"
expect_err "the count at the end" "3 line(s) were not valid calls"
for url in "$WS_URL" "$IPC"; do
  run ethcall batch --abi "$ABI" --input "$T/calls.jsonl" --rpc-url "$url" --batch-size 3 --concurrency 3
  check "batch over $url: the same lines" test "$(head -10 "$T/out")" = "$want"
done
run_in '{"to":"'"$DEMO"'","sig":"get()(uint256)"}' ethcall batch
expect "all lines good: exit 0; a last line without newline is answered" 0 '{"id":1,"result":2020}'
run_in '{"to":"'"$DEMO"'","sig":"ratio(uint256,uint256)(uint256)","args":[1,0]}
' ethcall batch
expect "only calls failed: exit 1" 1
run_in '{"to":"'"$DEMO"'","sig":"get()(uint256)"}' ethcall batch --raw
expect "--raw" 0 '{"id":1,"result":"0x00000000000000000000000000000000000000000000000000000000000007e4"}'
run_in '{"to":"'"$DEMO"'","sig":"get()(uint256)"}' ethcall batch --batch-size 0
expect "--batch-size 0" 64
run_in '{"to":"'"$DEMO"'","sig":"get()(uint256)"}' ethcall batch --rpc-url "http://127.0.0.1:$dead"
expect "batch: node unreachable" 69

# A line is answered as soon as it is read, not when a batch fills up: a coprocess sends
# one line and must get its answer while stdin is still open.
coproc BATCH { ethcall batch 2>&1; }
batch_pid=$BATCH_PID  # bash unsets BATCH_PID once it reaps the coprocess, which may be before `wait`
echo '{"to":"'"$DEMO"'","sig":"get()(uint256)"}' >&"${BATCH[1]}"
if read -r -t 20 answer <&"${BATCH[0]}"; then
  check "interactive line answered while stdin is open" test "$answer" = '{"id":1,"result":2020}'
else
  bad "interactive line answered while stdin is open" "no answer within 20 s"
fi
exec {BATCH[1]}>&-
wait "$batch_pid" 2>/dev/null

# 10,000 calls, every 97th line malformed: one answer per line, in input order, identical
# whatever the batch size and concurrency.
node -e '
const demo = process.argv[1];
for (let i = 1; i <= 10000; i++) {
  if (i % 97 === 0) console.log(`{"id":${i},"to":"${demo}","sig":"square(uint256,bool)(uint256)","args":["x"]}`);
  else if (i % 101 === 0) console.log(`{"id":${i},"to":"${demo}","sig":"square(uint256,bool)(uint256)","args":[${2000000 + i},true]}`);
  else console.log(`{"id":${i},"to":"${demo}","sig":"square(uint256,bool)(uint256)","args":[${i},false]}`);
}' "$DEMO" >"$T/10k.jsonl"
check_10k() {
  node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trimEnd().split("\n");
if (lines.length !== 10000) { console.log(`${lines.length} lines`); process.exit(1); }
lines.forEach((l, k) => {
  const r = JSON.parse(l), i = k + 1;
  const ok = r.id === i && (i % 97 === 0 ? r.error && r.error.code === -32602
    : i % 101 === 0 ? r.error && r.error.revert && r.error.revert.name === "TooBig"
    : r.result === i * i);
  if (!ok) { console.log(`line ${i}: ${l}`); process.exit(1); }
});' "$1"
}
for opts in "" "--batch-size 7 --concurrency 4" "--batch-size 1000 --concurrency 1"; do
  # shellcheck disable=SC2086
  ethcall batch --abi "$ABI" $opts <"$T/10k.jsonl" >"$T/10k.out" 2>"$T/10k.err"
  status=$?
  out=$(head -c 300 "$T/10k.out") err=$(tail -3 "$T/10k.err")
  expect "10,000 calls ($opts): exit 65 for the malformed lines" 65
  check "10,000 calls ($opts): one answer per line, in order" check_10k "$T/10k.out"
done
check "each malformed line reported on stderr" test "$(grep -c 'stdin:[0-9]*: expected 2 arguments, got 1' "$T/10k.err")" = 103

# A reader that goes away ends the batch quietly.
ethcall batch <"$T/10k.jsonl" 2>"$T/head.err" | head -1 >/dev/null
status=${PIPESTATUS[0]}
check "| head: batch ends without an error" test "$status" -eq 0 -o "$status" -eq 65
check "| head: nothing on stderr about the pipe" sh -c "! grep -qi 'broken pipe' '$T/head.err'"

finish
