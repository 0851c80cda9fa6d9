#!/usr/bin/env bash
# ethcall over wss://: anvil behind a TLS front (tests/cli/wss_relay.mjs: node's https server and
# the ws package, relaying each WebSocket message to anvil's ws:// endpoint), with a CA and
# certificates the openssl CLI makes here. The answers over wss:// are those over ws://; logs
# --follow is woken by its newHeads subscription through TLS; a certificate from an unknown CA,
# one for another name, and a peer that speaks the other protocol end with 69, naming the URL and
# OpenSSL's reason, after one handshake (not retried); a front that dies ends a follower with 69.
# ethcall has no flag for a private CA: like every OpenSSL client it trusts the system's store,
# or SSL_CERT_FILE / SSL_CERT_DIR when set, which is how this test trusts its CA.
source "$(dirname "$0")/lib.sh"
make_tls_certs "$T/c" || { echo "FAIL: openssl could not make the test certificates"; exit 1; }
C=$T/c
start_anvil
export ETH_RPC_URL=$ANVIL_URL
WS_URL=${ANVIL_URL/http:/ws:}
write_dev_key
PEERS=()
trap 'for p in "${PEERS[@]}"; do kill $p 2>/dev/null; done; kill $ANVIL_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
export SSL_CERT_FILE=$C/ca.pem
unset SSL_CERT_DIR

# start_relay NAME CERT KEY: a TLS front for anvil's ws:// with that certificate; its events go
# to $T/NAME.log. Sets ${NAME}_port and ${NAME}_pid.
start_relay() {
  local name=$1 pid
  : >"$T/$name.log"  # before the wait reads it: the background job opens it in its own time
  node "$PIPEKIT_SRC/tests/cli/wss_relay.mjs" "$2" "$3" "$WS_URL" >"$T/$name.log" 2>&1 &
  pid=$!
  PEERS+=("$pid")
  if ! wait_for 30 eval 'grep -q "^listening " "$T/'"$name"'.log" || ! kill -0 '"$pid"' 2>/dev/null' ||
    ! grep -q "^listening " "$T/$name.log"; then
    echo "FAIL: the TLS front ($name) did not listen within 30 s; its log:"
    cat "$T/$name.log"
    exit 1
  fi
  printf -v "${name}_port" %s "$(sed -n 's/^listening //p' "$T/$name.log")"
  printf -v "${name}_pid" %s "$pid"
}
# opens NAME: how many WebSocket connections the front NAME has taken.
opens() { grep -c '^open ' "$T/$1.log"; }
jl() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
    const rs=s.split("\n").filter(Boolean).map(l=>JSON.parse(l));
    const v=(new Function("rs","return ("+process.argv[1]+")"))(rs);
    console.log(typeof v==="string"?v:JSON.stringify(v))})' "$1"
}
# deploy NAME: compiles tests/fixtures/contracts/NAME.sol and deploys it; prints the address.
deploy() {
  node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/$1.sol" "$T/solc" >/dev/null 2>&1 || return 1
  ethcall deploy --bin "$T/solc/$1.bin" --private-key-file "$T/key" | jl 'rs[0].address'
}

start_relay good "$C/server.pem" "$C/server.key"
start_relay wronghost "$C/wronghost.pem" "$C/wronghost.key"
WSS=wss://127.0.0.1:$good_port

# --- the same answers as over ws:// --------------------------------------------------------------
run ethcall chain-id --rpc-url "$WS_URL"
expect "chain-id over ws://" 0 31337
run ethcall chain-id --rpc-url "$WSS"
expect "chain-id over wss:// (the test CA from SSL_CERT_FILE)" 0 31337
check "it went through the TLS front" test "$(opens good)" = 1
run env ETH_RPC_URL="wss://localhost:$good_port" ethcall chain-id
expect "a host name in the certificate verifies too (ETH_RPC_URL)" 0 31337

DEMO=$(deploy BatchDemo)
check "BatchDemo deployed" test "${#DEMO}" = 42
run ethcall call "$DEMO" 'get()(uint256)' --rpc-url "$WS_URL"
expect "call get() over ws://" 0 2020
run ethcall call "$DEMO" 'get()(uint256)' --rpc-url "$WSS"
expect "call get() over wss://: the same" 0 2020
run ethcall call "$DEMO" 'pair(uint256)(uint256 doubled,string label)' 21 --rpc-url "$WS_URL"
want=$out
check "call pair(21) over ws://" test "$status" = 0 -a -n "$want"
run ethcall call "$DEMO" 'pair(uint256)(uint256 doubled,string label)' 21 --rpc-url "$WSS"
expect "call pair(21) over wss://: what ws:// gave" 0 "$want"
run ethcall call "$DEMO" 'ratio(uint256,uint256)(uint256)' 1 0 --rpc-url "$WSS"
expect "a revert over wss://: 1" 1
expect_err "decoded" "division or modulo by zero"

# An answer of many TLS records: 20000 bytes of code (a contract whose constructor returns that
# many zero bytes: PUSH2 0x4e20 PUSH1 0 RETURN), 40 KB of hex in one WebSocket message.
hash=$(ethcall rpc eth_sendTransaction "[{\"from\":\"$DEV0\",\"data\":\"0x614e206000f3\"}]" | tr -d '"')
BIG=$(ethcall receipt "$hash" | jl 'rs[0].contractAddress')
run ethcall rpc eth_getCode "[\"$BIG\",\"latest\"]" --rpc-url "$WS_URL"
want=$out
check "eth_getCode over ws://: 20000 bytes" test "${#want}" = 40004
run ethcall rpc eth_getCode "[\"$BIG\",\"latest\"]" --rpc-url "$WSS"
expect "eth_getCode over wss://: the same 40 KB" 0 "$want"

# batch: several connections (one per worker), batches of 3.
for i in $(seq 1 40); do
  printf '{"to":"%s","sig":"square(uint256,bool)(uint256)","args":[%d,false]}\n' "$DEMO" "$i"
done >"$T/calls.jsonl"
run ethcall batch --input "$T/calls.jsonl" --rpc-url "$WS_URL" --batch-size 3 --concurrency 2
want=$out
check "batch over ws://: 40 answers" test "$(printf '%s\n' "$want" | grep -c '"result"')" = 40
run ethcall batch --input "$T/calls.jsonl" --rpc-url "$WSS" --batch-size 3 --concurrency 2
expect "batch over wss://: the same lines" 0 "$want"

# --- logs --follow over wss://: woken by newHeads through TLS ------------------------------------
LOGDEMO=$(deploy LogDemo)
check "LogDemo deployed" test "${#LOGDEMO}" = 42
from=$(($(ethcall block-number) + 1))
before=$(opens good)
# A poll interval longer than the test: only the subscription can wake the follower.
ethcall logs --follow --rpc-url "$WSS" --abi "$T/solc/LogDemo.abi" --event Tick --address "$LOGDEMO" \
  --from-block $from --poll-interval 1h >"$T/follow.out" 2>"$T/follow.err" &
FOLLOWER=$!
PEERS+=("$FOLLOWER")
# Emit only once the follower waits for a new head: the front has relayed the answer to its
# eth_subscribe, then the one to its look at the head (eth_blockNumber).
if ! wait_for 30 grep -q "^answer eth_blockNumber (subscribed)" "$T/good.log"; then
  bad "the follower subscribed through the TLS front" "$(cat "$T/good.log" "$T/follow.err")"
fi
check "the follower connected through the front" test "$(opens good)" -gt "$before"
ethcall send "$LOGDEMO" 'tick(uint256,uint256)' 500 2 --private-key-file "$T/key" >/dev/null || bad "send tick"
# wait_lines FILE N: until FILE has at least N lines (30 s).
wait_lines() { wait_for 30 eval '[ -f "'"$1"'" ] && [ "$(wc -l <"'"$1"'")" -ge '"$2"' ]'; }
check "the wss:// follower gets the two logs emitted after it started" wait_lines "$T/follow.out" 2
check "the follower was woken by a notification through TLS" grep -q '^notification' "$T/good.log"
check "each once, decoded" test "$(jl 'rs.map(r=>r.event+":"+r.args.i).join(" ")' <"$T/follow.out")" = "Tick:500 Tick:501"
kill -TERM "$FOLLOWER"
wait "$FOLLOWER"
status=$?
check "SIGTERM: exit 0" test "$status" = 0
grep -qv "signal 15: finishing" "$T/follow.err" && bad "the follower: no warning or error on stderr" "$(cat "$T/follow.err")" || ok

# A front that goes away under a follower: 69, naming the URL.
start_relay doomed "$C/server.pem" "$C/server.key"
ethcall logs --follow --rpc-url "wss://127.0.0.1:$doomed_port" --event 'Tick(uint256 indexed i)' \
  --poll-interval 1h >"$T/doomed.out" 2>"$T/doomed.err" &
FOLLOWER=$!
PEERS+=("$FOLLOWER")
wait_for 30 grep -q "^answer eth_blockNumber (subscribed)" "$T/doomed.log" ||
  bad "the second follower subscribed" "$(cat "$T/doomed.log" "$T/doomed.err")"
{ kill -9 "$doomed_pid"; wait "$doomed_pid"; } 2>/dev/null  # quiet: no "Killed" from bash
if wait_for 30 eval '! kill -0 '"$FOLLOWER"' 2>/dev/null'; then
  wait "$FOLLOWER"
  status=$?
  err=$(cat "$T/doomed.err")
  expect "the front killed: the follower ends with 69" 69
  expect_err "naming the URL" "wss://127.0.0.1:$doomed_port"
else
  bad "the follower ends when its front is gone" "still running 30 s after"
fi

# --- certificates that must not verify: 69, the URL and the reason, at the first handshake ---------
# refused NAME: the TLS handshakes the front NAME saw fail.
refused() { grep -c '^tls-error ' "$T/$1.log"; }
# settle: until the front "good" has logged every handshake made so far: one more, that succeeds,
# is made now and waited for (its connection comes after the others, and needs more round trips).
settle() {
  local n
  n=$(opens good)
  ethcall chain-id --rpc-url "$WSS" >/dev/null 2>&1
  wait_for 30 eval '[ "$(opens good)" -gt '"$n"' ]'
}
before=$(refused good)
run env SSL_CERT_FILE="$C/other-ca.pem" ethcall -v chain-id --rpc-url "$WSS"
expect "a certificate from a CA not trusted: 69" 69
expect_err "names the URL" "$WSS: eth_chainId: TLS handshake"
expect_err "says the certificate did not verify, and why" "certificate verify failed (SSL routines): unable to get local issuer certificate"
case $err in *retrying*) bad "OpenSSL's verdict is not retried" ;; *) ok ;; esac
settle
check "the front saw one handshake, refused" test "$(refused good)" = $((before + 1))
run env -u SSL_CERT_FILE ethcall chain-id --rpc-url "$WSS"
expect "the test CA is not in the system store: 69" 69
expect_err "says the certificate did not verify" "unable to get local issuer certificate"

# The wronghost front's certificate comes from the trusted CA, for elsewhere.invalid only.
run ethcall -v chain-id --rpc-url "wss://127.0.0.1:$wronghost_port"
expect "a certificate for another name (an IP address asked): 69" 69
expect_err "names the URL" "wss://127.0.0.1:$wronghost_port: eth_chainId: TLS handshake"
expect_err "says the address does not match" "certificate verify failed (SSL routines): IP address mismatch"
case $err in *retrying*) bad "a mismatch is not retried" ;; *) ok ;; esac
run ethcall chain-id --rpc-url "wss://localhost:$wronghost_port"
expect "a certificate for another name (a host name asked): 69" 69
expect_err "names the URL" "wss://localhost:$wronghost_port"
expect_err "says the name does not match" "hostname mismatch"
run ethcall -v logs --follow --rpc-url "wss://127.0.0.1:$wronghost_port" --event 'Tick(uint256 indexed i)'
expect "logs --follow with a certificate for another name: 69" 69
expect_err "says so" "IP address mismatch"
case $err in *retrying*) bad "logs: a mismatch is not retried" ;; *) ok ;; esac
run ethcall -v batch --input "$T/calls.jsonl" --rpc-url "wss://127.0.0.1:$wronghost_port" --concurrency 2
expect "batch with a certificate for another name: 69" 69
expect_err "says so" "IP address mismatch"
case $err in *retrying*) bad "batch: a mismatch is not retried" ;; *) ok ;; esac

# --- the other protocol on the other side ----------------------------------------------------------
run ethcall chain-id --rpc-url "wss://${ANVIL_URL#http://}" --rpc-timeout 5s
expect "wss:// to a plain ws:// node: 69" 69
expect_err "names the URL" "wss://${ANVIL_URL#http://}"
expect_err "in the TLS handshake" "TLS handshake"
run ethcall chain-id --rpc-url "ws://127.0.0.1:$good_port" --rpc-timeout 5s
expect "ws:// to a TLS server: 69" 69
expect_err "names the URL" "ws://127.0.0.1:$good_port"

finish
