#!/usr/bin/env bash
# ethcall against hostile inputs and nodes: files without end (/dev/zero), directories, a node
# that answers too much, with a wrong id, results of the wrong shape, reverts with malformed data.
# The node here is a stand-in (tests/tools/eth_rpc_standin.mjs), named as such: anvil cannot be
# made to misbehave. Every failure must be a clear message with the documented exit code.
source "$(dirname "$0")/lib.sh"
TO=0x0000000000000000000000000000000000000001

# standin NAME ARGS...: stops the last stand-in node, starts one with ARGS; sets URL (http) and
# WS_URL.
STANDIN_PID=
standin() {
  local name=$1 deadline
  shift
  [ -n "$STANDIN_PID" ] && { kill "$STANDIN_PID" 2>/dev/null; wait "$STANDIN_PID" 2>/dev/null; }
  node "$PIPEKIT_SRC/tests/tools/eth_rpc_standin.mjs" "$@" >"$T/$name.port" 2>"$T/$name.log" &
  STANDIN_PID=$!
  trap 'kill $STANDIN_PID 2>/dev/null; wait $STANDIN_PID 2>/dev/null; rm -rf "$T"' EXIT
  deadline=$((SECONDS + 30))
  until [ -s "$T/$name.port" ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
  [ -s "$T/$name.port" ] || { echo "FAIL: stand-in node $name did not start within 30 s"; cat "$T/$name.log"; exit 1; }
  URL=http://127.0.0.1:$(cat "$T/$name.port")
  WS_URL=ws://127.0.0.1:$(cat "$T/$name.port")
}
answer() { printf '{"jsonrpc":"2.0","id":"$ID",%s}' "$1"; }
lacks() { case $2 in *"$3"*) bad "$1" "must not contain: $3" ;; *) ok ;; esac; }

# ---- files read with a bound ------------------------------------------------------------------
run timeout 20 ethcall calldata --abi /dev/zero f 1
expect "--abi /dev/zero: too large, 65" 65
expect_err "says the bound" "--abi /dev/zero: larger than"
run ethcall calldata --abi "$T" f 1
expect "--abi DIRECTORY: 66" 66
expect_err "says it is a directory" "is a directory"
run ethcall calldata --abi "$T/missing.abi" f 1
expect "--abi missing: 66" 66
run timeout 20 ethcall deploy --bin /dev/zero --unlocked --from $TO --rpc-url http://127.0.0.1:1
expect "--bin /dev/zero: 65, before any node" 65
run timeout 20 ethcall send $TO --private-key-file /dev/zero --rpc-url http://127.0.0.1:1
expect "--private-key-file /dev/zero: 65" 65
key=0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318
run ethcall send $TO --private-key-file "$key" --rpc-url http://127.0.0.1:1
expect "a key given as --private-key-file: cannot open, 66" 66
lacks "the key is not echoed" "$err" "${key:2}"
run timeout 20 ethcall logs --checkpoint /dev/zero --rpc-url http://127.0.0.1:1
expect "--checkpoint /dev/zero: 65" 65
echo '{"version":2,"block":5,"hash":null,"recent":[]}' >"$T/cp-v2"
run ethcall logs --checkpoint "$T/cp-v2" --rpc-url http://127.0.0.1:1
expect "--checkpoint of an unknown version: 65" 65
expect_err "names the version" "version 2"

# ---- batch: a line's bad "abi" is that line's error; the others are answered -------------------
standin calls --answer "$(answer '"result":"0x"')"
printf '%s\n' '{"id":1,"to":"'$TO'","function":"f","abi":"/dev/zero"}' \
  '{"id":2,"to":"'$TO'","function":"f","abi":"/etc/passwd"}' \
  '{"id":3,"to":"'$TO'","function":"f","abi":"'"$T"'"}' \
  '{"id":4,"to":"'$TO'","sig":"f()"}' >"$T/lines"
run timeout 30 ethcall batch --rpc-url "$URL" --input "$T/lines"
expect "batch with bad abi files: 65" 65
check "every line answered" test "$(echo "$out" | wc -l)" = 4
case $(echo "$out" | sed -n 1p) in *'"id":1,"error"'*larger*) ok ;; *) bad "/dev/zero: the line's error says too large" ;; esac
line2=$(echo "$out" | sed -n 2p)
case $line2 in *'"id":2,"error"'*'not a JSON ABI file'*) ok ;; *) bad "/etc/passwd: not a JSON ABI" ;; esac
lacks "/etc/passwd's content is not echoed" "$line2" "'r'"
lacks "/etc/passwd's content is not echoed (root)" "$line2" "root"
case $(echo "$out" | sed -n 3p) in *'"id":3,"error"'*directory*) ok ;; *) bad "a directory: the line's error" ;; esac
check "the last line is answered" test "$(echo "$out" | sed -n 4p)" = '{"id":4,"result":"0x"}'

# ---- batch: --concurrency bounded; threads that cannot be started are not an abort ------------
run_in '{"to":"'$TO'","sig":"f()"}' ethcall batch --rpc-url "$URL" --concurrency 100000
expect "--concurrency 100000: usage error" 64
seq 1 200 | sed 's/.*/{"id":&,"to":"'$TO'","sig":"f()"}/' >"$T/many"
run timeout 60 bash -c 'ulimit -v 400000; exec ethcall batch --rpc-url "$1" --concurrency 200 --batch-size 1 --input "$2"' _ "$URL" "$T/many"
check "under ulimit -v: no abort (status $status)" test "$status" = 0 -o "$status" = 70
[ "$status" = 0 ] && check "under ulimit -v: every line answered" test "$(echo "$out" | grep -c '"result":"0x"')" = 200

# ---- answers larger than --max-response-size ------------------------------------------------
standin huge --body-bytes 3000000
for u in "$URL" "$WS_URL"; do
  run timeout 30 ethcall rpc debug_anything '[]' --rpc-url "$u" --max-response-size 1MiB
  expect "${u%%:*}: an answer over --max-response-size: 69" 69
  expect_err "${u%%:*}: names the bound" "larger than 1048576 bytes"
done
run ethcall rpc debug_anything '[]' --rpc-url "$URL" --max-response-size 10MiB
expect "an answer under the bound passes" 0
run ethcall chain-id --rpc-url "$URL" --max-response-size lots
expect "--max-response-size not a size: 64" 64

# ---- the node is not trusted: ids and result shapes -------------------------------------------
standin wrong-id --answer '{"jsonrpc":"2.0","id":999,"result":"0x1"}'
run ethcall chain-id --rpc-url "$URL"
expect "an answer with another id: 69" 69
expect_err "names the id" "the id is 999"
standin null-id --answer '{"jsonrpc":"2.0","id":null,"result":"0x1"}'
run ethcall chain-id --rpc-url "$URL"
expect "a result with a null id: 69" 69
standin null-result --answer "$(answer '"result":null')"
run ethcall call $TO 'f()(uint256)' --rpc-url "$URL"
expect "eth_call returning null: 69" 69
expect_err "names the method" "eth_call"
run ethcall chain-id --rpc-url "$URL"
expect "eth_chainId returning null: 69" 69
run ethcall receipt 0x0000000000000000000000000000000000000000000000000000000000000001 --rpc-url "$URL"
expect "a null receipt is no transaction: 1" 1
standin object-result --answer "$(answer '"result":{"a":1}')"
run ethcall balance $TO --rpc-url "$URL"
expect "eth_getBalance returning an object: 69" 69
standin long-quantity --answer "$(answer '"result":"0x'"$(printf '1%.0s' $(seq 100))"'"')"
run ethcall block-number --rpc-url "$WS_URL"
expect "a 100-digit quantity: 69" 69
expect_err "says what is wrong" "at most 256 bits"
standin string-receipt --answer "$(answer '"result":"0x12"')"
run ethcall receipt 0x0000000000000000000000000000000000000000000000000000000000000001 --rpc-url "$URL"
expect "a receipt that is a string: 69" 69
standin control --answer "$(answer '"result":"\u001b[31mred"')"
run ethcall chain-id --rpc-url "$URL"
expect "control characters in a bad result: 69" 69
lacks "shown escaped" "$err" $'\033'

# ---- a revert whose Error(string) data is malformed -------------------------------------------
standin revert --answer "$(answer '"error":{"code":3,"message":"execution reverted","data":"0x08c379a00000"}')"
for cmd in call estimate; do
  run ethcall $cmd $TO 'f()' --rpc-url "$URL"
  expect "$cmd: a revert with malformed data exits 1" 1
  expect_err "$cmd: says it reverted" "revert"
  expect_err "$cmd: shows the raw data" "0x08c379a00000"
done
finish
