#!/usr/bin/env bash
# shellcheck disable=SC2016  # in node -e '...' scripts, $ and ` are JavaScript's
# pipekit's main job, on one machine, on loopback and free ports: ERC-20 transfers on a real
# Ethereum node reach the recipients' WebSocket clients, through NSQ and the push cluster, and
# nothing is lost on the way.
#
#   ethcall logs --follow (Transfer) | nsq-pub -t transfers
#   nsq-tail -t transfers -c push | push-route --user-pointer /args/to ... | nsq-pub -t undelivered
#   nsq-tail -t transfers -c archive --output-dir ...
#
# It starts anvil (npm), redis-server, lookupd, nsq-broker --durable and two ws-push nodes,
# deploys a token, logs terminal clients (`ws-push connect`) in as recipients on both nodes,
# sends transfers (one to a user who is offline and logs in later with "since") and shows what
# each client received. It serves a small page (examples/demo/index.html) that shows one user's
# notifications in a browser. Ctrl-C stops everything it started.
#
# Usage: examples/demo.sh [--check] [--browser] [--keep]
#   --check    run through, verify every delivery, exit 0 or 1 (CI runs this as a test)
#   --browser  also open the page in headless Chromium (playwright-core) and check that it shows
#              alice's transfer
#   --keep     keep running (alice gets 1 DEMO every 10 s) until Ctrl-C; the default on a terminal
# Needs pipekit's programs on PATH (`make -f Makefile.dist demo` sets it) and tests/node_modules.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
mode=show
keep=0
browser=0
[ -t 1 ] && keep=1
for a in "$@"; do
  case $a in
    --check) mode=check; keep=0 ;;
    --browser) browser=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '3,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a; usage: $0 [--check] [--browser] [--keep]" >&2; exit 64 ;;
  esac
done
modules=${PIPEKIT_TEST_NODE_MODULES:-$src/tests/node_modules}
for tool in ethcall nsq-pub nsq-tail nsq-broker lookupd ws-push push-route; do
  command -v $tool >/dev/null || { echo "demo: $tool is not on PATH (make -f Makefile.dist build)" >&2; exit 69; }
done
for tool in node curl setsid redis-server redis-cli; do
  command -v $tool >/dev/null || { echo "demo: $tool is missing (make -f Makefile.dist deps)" >&2; exit 69; }
done
[ -x "$modules/.bin/anvil" ] || { echo "demo: anvil is missing (make -f Makefile.dist deps)" >&2; exit 69; }

D=$(mktemp -d "${TMPDIR:-/tmp}/pipekit-demo.XXXXXX")
# Every program runs in a process group of its own (setsid), so that stopping one stops all of a
# pipeline. NAMES/PIDS: what was started; SERVICES: what must stay up (a death is a failure).
NAMES=() PIDS=()
declare -A SERVICES=()
failed=0
# A watchdog in its own session: if this script is killed outright (SIGKILL, a test runner's
# timeout), it stops every group listed in $D/groups within a second.
setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
  [ -f "$2" ] && while read -r g; do kill -KILL -- "-$g" 2>/dev/null; done <"$2"' demo-watchdog $$ "$D/groups" \
  </dev/null >/dev/null 2>&1 &
watchdog=$!
stop_all() {
  local i p deadline=$((SECONDS + 10))
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM -- "-${PIDS[i]}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    while kill -0 -- "-$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=() NAMES=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ $rc -ne 0 ] && [ $rc -ne 130 ] && failed=1
  [ -z "${sleeper:-}" ] || kill "$sleeper" 2>/dev/null || true
  stop_all
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  if [ $failed -eq 0 ]; then
    rm -rf "$D"
  else
    for f in "$D"/*.log; do
      [ -s "$f" ] || continue
      echo "--- ${f##*/} (last lines)" >&2
      tail -n 8 "$f" >&2
    done
    echo "demo: logs kept in $D" >&2
  fi
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping everything it started"; exit 130' INT TERM

say() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
fail() { echo "demo: FAILED: $*" >&2; failed=1; exit 1; }
# start NAME CMD...: in the background, in a group of its own; stdout to $D/NAME.out, stderr to
# $D/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$D/$name.out" 2>"$D/$name.log" &
  NAMES+=("$name") PIDS+=($!)
  echo $! >>"$D/groups"
}
service() { start "$@"; SERVICES[$1]=$!; }
services_up() {
  local n
  for n in "${!SERVICES[@]}"; do
    kill -0 "${SERVICES[$n]}" 2>/dev/null || fail "$n exited (see $n.log)"
  done
}
# wait_for SECONDS WHAT CMD...: runs CMD until it succeeds; fails naming WHAT after SECONDS, or
# at once when a service died.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    services_up
    [ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s: $what"
    sleep 0.1
  done
}
lines() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }  # has_lines FILE N
# A free loopback port (free now: something else may take it before it is used).
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# A JWT (HS256) for a user, signed with the nodes' secret (what a login service would issue).
token() {
  node -e 'const c=require("crypto"),[k,u]=process.argv.slice(1),b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
    const s=b({alg:"HS256",typ:"JWT"})+"."+b({sub:u,exp:Math.floor(Date.now()/1000)+86400});
    console.log(s+"."+c.createHmac("sha256",k.trim()).update(s).digest("base64url"))' "$(cat "$D/secret")" "$1"
}
# json EXPR: evaluates EXPR on the JSON value read from stdin (as `v`).
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log(eval(process.argv[1]))})' "$1"; }

say "starting the services (all on 127.0.0.1, files in $D)"
# Every daemon that can listens on port 0 and says in its log where it listens (no race for a
# port with the rest of the machine); redis-server cannot, so it gets a free port, and another
# one if that was taken in the meantime.
for _ in 1 2 3 4 5; do
  redis_port=$(free_port)
  : >"$D/redis.log"
  service redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$D" \
    --logfile "$D/redis.log"
  deadline=$((SECONDS + 20))
  until grep -q 'Ready to accept connections' "$D/redis.log" || ! kill -0 "${SERVICES[redis]}" 2>/dev/null ||
    [ $SECONDS -ge $deadline ]; do sleep 0.05; done
  grep -q 'Ready to accept connections' "$D/redis.log" && break
  grep -q 'Address already in use' "$D/redis.log" || fail "redis-server did not start (see redis.log)"
  unset 'SERVICES[redis]'
done
grep -q 'Ready to accept connections' "$D/redis.log" || fail "redis-server found no free port in 5 attempts"
redis=redis://127.0.0.1:$redis_port
service anvil "$modules/.bin/anvil" --host 127.0.0.1 --port 0
service lookupd lookupd --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:0
(umask 077 && head -c 32 /dev/urandom | base64 >"$D/secret")
for n in a b; do
  service ws-push-$n ws-push --jwt-secret-file "$D/secret" --listen 127.0.0.1:0 --push-listen 127.0.0.1:0 \
    --redis "$redis" --node-id "$n" --route-ttl 3s
done
service page node "$src/examples/demo/serve.mjs" "$src/examples/demo"
# bound VAR FILE PREFIX: VAR = the host:port that follows PREFIX in FILE, once it is there.
bound() {
  local re="$3[0-9.]+:[0-9]+"
  wait_for 60 "${2##*/} says where it listens ($3...)" grep -qE "$re" "$2"
  printf -v "$1" '%s' "$(grep -oE "$re" "$2" | head -n 1 | grep -oE '[0-9.]+:[0-9]+$')"
}
lookupd_tcp='' lookupd_http='' nsqd_tcp='' nsqd_http='' anvil_addr=''
bound lookupd_tcp "$D/lookupd.log" 'TCP: listening on '
bound lookupd_http "$D/lookupd.log" 'HTTP: listening on '
mkdir -p "$D/nsq"
service nsq-broker nsq-broker --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:0 --lookupd-tcp-address "$lookupd_tcp" \
  --data-path "$D/nsq" --durable
declare -A ws api
for n in a b; do
  bound "ws[$n]" "$D/ws-push-$n.log" 'WebSocket: listening on '
  bound "api[$n]" "$D/ws-push-$n.log" 'push API: listening on '
done
bound nsqd_tcp "$D/nsq-broker.log" 'TCP: listening on '
bound nsqd_http "$D/nsq-broker.log" 'HTTP: listening on '
bound anvil_addr "$D/anvil.out" 'Listening on '
export ETH_RPC_URL=http://$anvil_addr
wait_for 60 "anvil answers" ethcall chain-id
wait_for 20 "nsq-broker answers" curl -sf "http://$nsqd_http/ping"
wait_for 20 "ws-push a answers" curl -sf "http://${api[a]}/healthz"
wait_for 20 "ws-push b answers" curl -sf "http://${api[b]}/healthz"
wait_for 20 "the page server says where it listens" grep -q '^http://' "$D/page.out"
page=$(head -n 1 "$D/page.out")
# The topic and both channels exist before anything is published, so that each channel gets
# every transfer and the consumers find the broker through lookupd at once.
curl -sf -X POST "http://$nsqd_http/topic/create?topic=transfers" >/dev/null
for c in push archive; do curl -sf -X POST "http://$nsqd_http/channel/create?topic=transfers&channel=$c" >/dev/null; done
wait_for 20 "lookupd knows the broker of topic transfers" bash -c "curl -sf 'http://$lookupd_http/lookup?topic=transfers' | grep -q '\"tcp_port\":${nsqd_tcp##*:}'"
cat <<EOF
  anvil           $ETH_RPC_URL
  redis-server    $redis
  lookupd         tcp $lookupd_tcp, http $lookupd_http
  nsq-broker      tcp $nsqd_tcp, http $nsqd_http (--durable, data in $D/nsq)
  ws-push a       ws://${ws[a]}/ws, push API ${api[a]}
  ws-push b       ws://${ws[b]}/ws, push API ${api[b]}
  the demo page   $page
EOF

say "deploying DemoToken (compiled by solc now)"
node "$src/tests/tools/solc_compile.mjs" "$src/tests/fixtures/contracts/DemoToken.sol" "$D/solc" 2>/dev/null
(umask 077 && printf '0x%s\n' ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 >"$D/key")  # anvil's dev key 0
ethcall deploy --bin "$D/solc/DemoToken.bin" --abi "$D/solc/DemoToken.abi" --private-key-file "$D/key" \
  1000000000000000000000 >"$D/deploy.json"
token_address=$(json v.address <"$D/deploy.json")
deploy_block=$(json 'Number(v.receipt.blockNumber)' <"$D/deploy.json")
echo "  DemoToken at $token_address (block $deploy_block); 1000 DEMO minted to the deployer"

# Recipients: anvil's dev accounts 1..3, logged in by their addresses in lower case.
alice=0x70997970c51812dc3a010c7d01b50e0d17dc79c8
bob=0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc
carol=0x90f79bf6eb2c4f870365e785982e1f101e93b906
deployer=0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266

say "the pipeline"
cat <<EOF
  ethcall logs --follow --event Transfer --address $token_address | nsq-pub -t transfers
  nsq-tail -t transfers -c push | push-route --user-pointer /args/to --user-case lower | nsq-pub -t undelivered
  nsq-tail -t transfers -c archive --output-dir $D/archive
EOF
service follow bash -c "ethcall logs --follow --poll-interval 200ms --from-block $deploy_block --checkpoint '$D/checkpoint' \
  --abi '$D/solc/DemoToken.abi' --event Transfer --address $token_address | nsq-pub -t transfers --nsqd-tcp-address $nsqd_tcp"
service route bash -c "nsq-tail -t transfers -c push --lookupd-http-address $lookupd_http |
  push-route --redis $redis --user-pointer /args/to --user-case lower --delivered '$D/delivered.jsonl' --stats |
  tee '$D/undelivered.jsonl' | nsq-pub -t undelivered --nsqd-tcp-address $nsqd_tcp"
mkdir -p "$D/archive"
service archive nsq-tail -t transfers -c archive --lookupd-http-address "$lookupd_http" --output-dir "$D/archive" \
  --sync-interval 1s

# The mint in the deploy block goes to the deployer, who is not logged in: the first undelivered.
wait_for 30 "the mint went through the pipeline (reported: the deployer is offline)" \
  grep -q "\"reason\":\"offline\".*\"users\":\\[\"$deployer\"" "$D/undelivered.jsonl"
echo "  the mint to the deployer came through: reported undelivered (offline), kept in NSQ topic undelivered"

say "recipients log in: alice on both nodes, bob on node b, carol on node a (for one message)"
client() {  # client NAME NODE USER [ARGS...]: ws-push connect, its JSON Lines in $D/NAME.out
  local name=$1 node=$2 user=$3
  shift 3
  token "$user" >"$D/$name.token"
  # Through a pipe: ws-push connect flushes each line to a pipe or terminal (to a file only at exit).
  start "$name" bash -c 'ws-push connect "$@" | cat' client "ws://${ws[$node]}/ws" --token-file "$D/$name.token" "$@"
}
client alice-a a "$alice"
client alice-b b "$alice"
client bob b "$bob"
client carol a "$carol" -n 1
for c in alice-a alice-b bob carol; do wait_for 20 "$c logged in" grep -q 'logged in' "$D/$c.log"; done
echo "  ws-push connect ws://${ws[a]}/ws  as alice, carol"
echo "  ws-push connect ws://${ws[b]}/ws  as alice, bob"
if [ $browser -eq 1 ]; then
  service browser node "$src/tests/interop/demo_page.mjs" "$page#ws=ws://${ws[a]}/ws&token=$(token "$alice")" \
    "received 5 DEMO"
  wait_for 90 "headless Chromium shows the page logged in" grep -q '^ready' "$D/browser.out"
  echo "  headless Chromium opened the demo page as alice (node a)"
fi

send() {  # send TO AMOUNT_TOKENS
  ethcall send "$token_address" 'transfer(address,uint256)' "$1" "${2}000000000000000000" --private-key-file "$D/key" >/dev/null
}
show() {  # show NAME: what a client printed, as sentences
  node -e 'const fs=require("fs");for(const l of fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean)){
    const m=JSON.parse(l),a=m.data.args;console.log(`  ${process.argv[2]} received ${BigInt(a.value)/10n**18n} DEMO from ${a.from.slice(0,10)}… (id ${m.id})`)}' \
    "$D/$1.out" "$1"
}
say "transfers: 5 DEMO to alice, 7 to bob, 1 to carol"
send "$alice" 5
send "$bob" 7
send "$carol" 1
wait_for 30 "alice gets her 5 DEMO on node a" has_lines "$D/alice-a.out" 1
wait_for 30 "alice gets her 5 DEMO on node b" has_lines "$D/alice-b.out" 1
wait_for 30 "bob gets his 7 DEMO" has_lines "$D/bob.out" 1
wait_for 30 "carol gets her 1 DEMO" has_lines "$D/carol.out" 1
show alice-a; show alice-b; show bob; show carol
if [ $browser -eq 1 ]; then
  wait_for 30 "the page in Chromium shows alice's transfer" grep -q '^shown' "$D/browser.out"
  echo "  the page in Chromium: $(grep '^shown' "$D/browser.out" | cut -c7-)"
fi
carol_last=$(tail -n 1 "$D/carol.out" | json v.id)

say "carol is offline now (her client took one message and left); 3 DEMO to her"
routes() { [ "$(redis-cli -p "$redis_port" ZCARD "pipekit:user:{$1}:nodes")" = "$2" ]; }  # routes USER N
wait_for 20 "carol's route is gone" routes "$carol" 0
send "$carol" 3
wait_for 30 "carol's transfer reported undelivered (offline)" \
  grep -q "\"reason\":\"offline\".*\"users\":\\[\"$carol\"" "$D/undelivered.jsonl"
echo "  push-route reported it (and nsq-pub kept it in topic undelivered):"
grep "\"users\":\\[\"$carol\"" "$D/undelivered.jsonl" | cut -c1-150 | sed 's/^/    /;s/$/…/'
echo "  her history in Redis (XRANGE pipekit:user:{$carol}:history): $(redis-cli -p "$redis_port" XLEN "pipekit:user:{$carol}:history") messages"

say "carol logs in again with since=$carol_last: she gets what she missed"
client carol-again b "$carol" --since "$carol_last" -n 1
wait_for 30 "carol gets the transfer she missed" has_lines "$D/carol-again.out" 1
show carol-again

say "the archive channel stored every transfer"
archived() { cat "$D"/archive/* 2>/dev/null | grep -c '"event":"Transfer"' || true; }
archived_ge() { [ "$(archived)" -ge "$1" ]; }
wait_for 30 "the archive has the 5 transfers (mint and 4 sent)" archived_ge 5
echo "  $(archived) Transfer records in $D/archive/"

if [ "$mode" = check ]; then
  check() { node -e "$2" "$D" "$alice" "$bob" "$carol" "$deployer" || { echo "demo: check failed: $1" >&2; failed=1; }; }
  read_lines='const fs=require("fs"),[d,alice,bob,carol,deployer]=process.argv.slice(1),
    read=f=>fs.existsSync(`${d}/${f}`)?fs.readFileSync(`${d}/${f}`,"utf8").split("\n").filter(Boolean).map(l=>JSON.parse(l)):[];
    const got=(f,to,v)=>{const ls=read(f);return ls.length===1&&ls[0].type==="message"&&ls[0].data.args.to.toLowerCase()===to&&ls[0].data.args.value===v+"000000000000000000";};'
  check "alice got exactly her transfer, on both nodes" "$read_lines"'process.exit(got("alice-a.out",alice,"5")&&got("alice-b.out",alice,"5")?0:1)'
  check "bob got exactly his" "$read_lines"'process.exit(got("bob.out",bob,"7")?0:1)'
  check "carol got exactly her first one" "$read_lines"'process.exit(got("carol.out",carol,"1")?0:1)'
  check "undelivered: exactly the mint and carol's 3, reason offline, kept in her history" "$read_lines"'
    const u=read("undelivered.jsonl");
    process.exit(u.length===2&&u.every(r=>r.reason==="offline")&&u[0].users[0]===deployer&&u[1].users[0]===carol&&
      u[1].message.args.value==="3000000000000000000"&&typeof u[1].history?.[carol]==="string"?0:1)'
  check "delivered: alice ($((2 + browser)) connections), bob, carol" "$read_lines"'
    const r=read("delivered.jsonl").map(x=>`${x.users.join()}:${x.connections}`).sort().join(" ");
    process.exit(r===[`${alice}:'$((2 + browser))'`,`${bob}:1`,`${carol}:1`].sort().join(" ")?0:1)'
  check "carol got the one she missed (and only that) after logging in with since on the other node" \
    "$read_lines"'process.exit(got("carol-again.out",carol,"3")?0:1)'
  check "the archive holds each transfer once" "$read_lines"'
    const a=fs.readdirSync(`${d}/archive`).flatMap(f=>fs.readFileSync(`${d}/archive/${f}`,"utf8").split("\n").filter(Boolean)).map(l=>JSON.parse(l));
    const keys=a.map(r=>`${r.tx_hash}:${r.log_index}`);process.exit(a.length===5&&new Set(keys).size===5?0:1)'
  [ $failed -eq 0 ] || fail "see the checks above"
  echo
  echo "demo: every check passed in ${SECONDS}s"
  exit 0
fi

say "what is running"
for i in "${!NAMES[@]}"; do
  kill -0 "${PIDS[i]}" 2>/dev/null && printf '  %-12s pid %s\n' "${NAMES[i]}" "${PIDS[i]}"
done
echo
echo "  watch alice's notifications in a browser (node a):"
echo "    $page#ws=ws://${ws[a]}/ws&token=$(token "$alice")"
echo "  or in a terminal: WS_PUSH_TOKEN=\$(cat $D/alice-a.token) ws-push connect ws://${ws[b]}/ws"
echo "  send more: ETH_RPC_URL=$ETH_RPC_URL ethcall send $token_address 'transfer(address,uint256)' $alice 2000000000000000000 --private-key-file $D/key"
if [ $keep -eq 1 ]; then
  echo
  echo "  alice gets 1 DEMO every 10 s. Ctrl-C (or kill $$) stops everything the demo started."
  shown=$(lines "$D/alice-a.out")
  while true; do
    sleep 10 &  # waited for with `wait`, which a signal interrupts at once
    sleeper=$!
    wait $sleeper
    send "$alice" 1 || echo "demo: a transfer to alice failed" >&2
    deadline=$((SECONDS + 5))
    while [ "$(lines "$D/alice-a.out")" -le "$shown" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    show alice-a | tail -n +$((shown + 1))
    shown=$(lines "$D/alice-a.out")
  done
fi
echo
echo "demo: done; stopping everything it started (--keep leaves it running)"
