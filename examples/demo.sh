#!/usr/bin/env bash
# pipekit's main job, on one machine, on loopback and free ports: ERC-20 transfers on a real
# Ethereum node reach the recipients' WebSocket clients, through NSQ and the push cluster, and
# nothing is lost on the way.
#
#   ethcall logs --follow (Transfer) | nsq-pub -t transfers
#   nsq-tail -t transfers -c push | push-route --user-pointer /body/args/to ... | nsq-pub -t undelivered
#   nsq-tail -t transfers -c archive --output-dir ...
#
# It starts anvil (npm), redis-server, lookupd, nsq-broker --durable and two ws-push nodes,
# deploys a token, logs terminal clients (`ws-push connect`) in as recipients on both nodes,
# sends transfers (one to a user who is offline and logs in later with "since") and shows what
# each client received. Ctrl-C stops everything it started.
#
# Usage: examples/demo.sh [--check] [--keep]
#   --check  run through, verify every delivery, exit 0 or 1 (CI runs this as a test)
#   --keep   leave the services running until Ctrl-C (default when a terminal is attached)
# Needs pipekit's programs on PATH (`make -f Makefile.dist demo` sets it) and tests/node_modules.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
mode=show
keep=0
[ -t 1 ] && keep=1
for a in "$@"; do
  case $a in
    --check) mode=check; keep=0 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--check] [--keep]" >&2; exit 64 ;;
  esac
done
modules=${PIPEKIT_TEST_NODE_MODULES:-$src/tests/node_modules}
for tool in ethcall nsq-pub nsq-tail nsq-broker lookupd ws-push push-route; do
  command -v $tool >/dev/null || { echo "demo: $tool is not on PATH (make -f Makefile.dist build)" >&2; exit 69; }
done
command -v redis-server >/dev/null || { echo "demo: redis-server is missing (make -f Makefile.dist deps)" >&2; exit 69; }
[ -x "$modules/.bin/anvil" ] || { echo "demo: anvil is missing (make -f Makefile.dist deps)" >&2; exit 69; }

D=$(mktemp -d /tmp/pipekit-demo.XXXXXX)
PIDS=()
failed=0
cleanup() {
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for p in "${PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ $failed -eq 0 ]; then rm -rf "$D"; else echo "demo: logs kept in $D" >&2; fi
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping everything it started"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
bad() { echo "demo: FAILED: $*" >&2; failed=1; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# until_true SECONDS WHAT CMD...: runs CMD until it succeeds, or fails naming WHAT after SECONDS.
until_true() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then bad "timed out after ${limit}s: $what"; return 1; fi
    sleep 0.1
  done
}
start() {  # start NAME CMD...: in the background, stderr to $D/NAME.log
  local name=$1
  shift
  "$@" 2>"$D/$name.log" &
  PIDS+=($!)
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
# A JWT (HS256) for a user, signed with the nodes' secret (what a login service would issue).
token() {
  node -e 'const c=require("crypto"),[k,u]=process.argv.slice(1),b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
    const s=b({alg:"HS256",typ:"JWT"})+"."+b({sub:u,exp:Math.floor(Date.now()/1000)+3600});
    console.log(s+"."+c.createHmac("sha256",k).update(s).digest("base64url"))' "$(cat "$D/secret")" "$1"
}

say "starting the services (all on 127.0.0.1, in $D)"
anvil_port=$(free_port)
start anvil "$modules/.bin/anvil" --host 127.0.0.1 --port "$anvil_port" --silent
export ETH_RPC_URL=http://127.0.0.1:$anvil_port
redis_port=$(free_port)
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$D"
redis=redis://127.0.0.1:$redis_port
lookupd_tcp=127.0.0.1:$(free_port) lookupd_http=127.0.0.1:$(free_port)
start lookupd lookupd --tcp-address "$lookupd_tcp" --http-address "$lookupd_http"
nsqd_tcp=127.0.0.1:$(free_port) nsqd_http=127.0.0.1:$(free_port)
mkdir -p "$D/nsq"
start nsq-broker nsq-broker --tcp-address "$nsqd_tcp" --http-address "$nsqd_http" --lookupd-tcp-address "$lookupd_tcp" \
  --data-path "$D/nsq" --durable
head -c 32 /dev/urandom | base64 >"$D/secret"
declare -A ws api
for n in a b; do
  ws[$n]=127.0.0.1:$(free_port) api[$n]=127.0.0.1:$(free_port)
  start ws-push-$n ws-push --jwt-secret-file "$D/secret" --listen "${ws[$n]}" --push-listen "${api[$n]}" \
    --redis "$redis" --node-id "$n" --route-ttl 3s
done
until_true 60 "anvil answers" ethcall chain-id
until_true 20 "lookupd answers" curl -sf "http://$lookupd_http/ping"
until_true 20 "nsq-broker answers" curl -sf "http://$nsqd_http/ping"
until_true 20 "ws-push a answers" curl -sf "http://${api[a]}/healthz"
until_true 20 "ws-push b answers" curl -sf "http://${api[b]}/healthz"
echo "anvil $ETH_RPC_URL, redis $redis, lookupd $lookupd_http, nsq-broker $nsqd_tcp (durable),"
echo "ws-push a ws://${ws[a]}/ws (push API ${api[a]}), ws-push b ws://${ws[b]}/ws (push API ${api[b]})"

say "deploying DemoToken (compiled by solc now)"
node "$src/tests/tools/solc_compile.mjs" "$src/tests/fixtures/contracts/DemoToken.sol" "$D/solc" >/dev/null
printf '0x%s\n' ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 >"$D/key"  # anvil's dev key 0
chmod 600 "$D/key"
token_address=$(ethcall deploy --bin "$D/solc/DemoToken.bin" --abi "$D/solc/DemoToken.abi" --private-key-file "$D/key" \
  1000000000000000000000 | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).address))')
echo "DemoToken at $token_address"

# Recipients: anvil's dev accounts 1..3, logged in by their addresses in lower case.
alice=0x70997970c51812dc3a010c7d01b50e0d17dc79c8
bob=0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc
carol=0x90f79bf6eb2c4f870365e785982e1f101e3b906

say "the pipeline"
echo "ethcall logs --follow --event Transfer | nsq-pub -t transfers"
start follow bash -c "ethcall logs --follow --poll-interval 200ms --checkpoint '$D/checkpoint' --abi '$D/solc/DemoToken.abi' \
  --event Transfer --address $token_address | nsq-pub -t transfers --nsqd-tcp-address $nsqd_tcp"
echo "nsq-tail -t transfers -c push | push-route --user-pointer /body/args/to --user-case lower | nsq-pub -t undelivered"
start route bash -c "nsq-tail -t transfers -c push --lookupd-http-address $lookupd_http |
  push-route --redis $redis --user-pointer /body/args/to --data-pointer /body --user-case lower |
  tee '$D/undelivered.jsonl' | nsq-pub -t undelivered --nsqd-tcp-address $nsqd_tcp"
echo "nsq-tail -t transfers -c archive --output-dir $D/archive"
mkdir -p "$D/archive"
start archive nsq-tail -t transfers -c archive --lookupd-http-address "$lookupd_http" --output-dir "$D/archive"

say "recipients log in: alice on both nodes, bob on node b, carol once on node a"
client() {  # client NAME NODE USER [ARGS...]
  local name=$1 node=$2 user=$3
  shift 3
  WS_PUSH_TOKEN=$(token "$user") ws-push connect "ws://${ws[$node]}/ws" "$@" >"$D/$name.jsonl" 2>"$D/client-$name.log" &
  PIDS+=($!)
}
client alice-a a "$alice"
client alice-b b "$alice"
client bob b "$bob"
client carol a "$carol" -n 1
zcard() { [ "$(redis-cli -p "$redis_port" ZCARD "pipekit:user:{$1}:nodes")" = "$2" ]; }
until_true 20 "alice routed on both nodes" zcard "$alice" 2
until_true 20 "bob routed" zcard "$bob" 1
until_true 20 "carol routed" zcard "$carol" 1

send() {  # send TO AMOUNT_TOKENS
  ethcall send "$token_address" 'transfer(address,uint256)' "$1" "${2}000000000000000000" --private-key-file "$D/key" >/dev/null
}
say "transfers: 5 DEMO to alice, 7 to bob, 1 to carol"
send "$alice" 5
send "$bob" 7
send "$carol" 1
show() {  # show NAME: what a client printed, as sentences
  node -e 'const fs=require("fs");for(const l of fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean)){
    const m=JSON.parse(l),a=m.data.args;console.log(`  ${process.argv[2]} received ${BigInt(a.value)/10n**18n} DEMO from ${a.from.slice(0,10)}… (id ${m.id})`)}' \
    "$D/$1.jsonl" "$1"
}
until_true 30 "alice gets 5 on node a" test "$(lines "$D/alice-a.jsonl")" -ge 1
until_true 30 "alice gets 5 on node b" test "$(lines "$D/alice-b.jsonl")" -ge 1
until_true 30 "bob gets 7" test "$(lines "$D/bob.jsonl")" -ge 1
until_true 30 "carol gets 1" test "$(lines "$D/carol.jsonl")" -ge 1
show alice-a; show alice-b; show bob; show carol
carol_last=$(node -e 'const fs=require("fs");const ls=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean);console.log(JSON.parse(ls.at(-1)).id)' "$D/carol.jsonl")

say "carol is offline now (her client took one message and left); 3 DEMO to her"
until_true 20 "carol's route gone" zcard "$carol" 0
send "$carol" 3
until_true 30 "carol's transfer reported undelivered (offline)" grep -q "\"reason\":\"offline\".*\"users\":\\[\"$carol\"" "$D/undelivered.jsonl"
echo "  push-route | nsq-pub -t undelivered got:"
sed 's/^/  /' "$D/undelivered.jsonl" | cut -c1-160

say "carol logs in again with since=$carol_last: she gets what she missed"
client carol-again b "$carol" --since "$carol_last" -n 1
until_true 30 "carol gets the missed transfer" test "$(lines "$D/carol-again.jsonl")" -ge 1
show carol-again

say "the archive channel stored every transfer"
until_true 30 "archive has the 4 transfers" bash -c "[ \$(cat '$D'/archive/* 2>/dev/null | grep -c '\"value\"') -ge 4 ]"
echo "  $(cat "$D"/archive/* | grep -c '"value"') transfer records in $D/archive"

if [ "$mode" = check ]; then
  check() { node -e "$2" "$D" || bad "$1"; }
  check "alice got exactly her transfer on both nodes" 'const fs=require("fs"),d=process.argv[1];
    for (const f of ["alice-a","alice-b"]) { const ls=fs.readFileSync(`${d}/${f}.jsonl`,"utf8").split("\n").filter(Boolean).map(JSON.parse);
      if (ls.length!==1||ls[0].data.args.value!=="5000000000000000000") process.exit(1); }'
  check "bob got exactly his" 'const fs=require("fs"),ls=fs.readFileSync(process.argv[1]+"/bob.jsonl","utf8").split("\n").filter(Boolean).map(JSON.parse);
    process.exit(ls.length===1&&ls[0].data.args.value==="7000000000000000000"?0:1)'
  check "carol got the missed one after login with since" 'const fs=require("fs"),ls=fs.readFileSync(process.argv[1]+"/carol-again.jsonl","utf8").split("\n").filter(Boolean).map(JSON.parse);
    process.exit(ls.length===1&&ls[0].data.args.value==="3000000000000000000"?0:1)'
  if [ $failed -ne 0 ]; then echo "demo: FAILED"; exit 1; fi
  echo "demo: every check passed"
  exit 0
fi

if [ $keep -eq 1 ]; then
  say "running; watch a user with: WS_PUSH_TOKEN=\$(token) ws-push connect ws://${ws[a]}/ws"
  echo "send more: ethcall send $token_address 'transfer(address,uint256)' ADDRESS AMOUNT --private-key-file $D/key --rpc-url $ETH_RPC_URL"
  echo "Ctrl-C stops everything."
  while true; do sleep 3600; done
fi
