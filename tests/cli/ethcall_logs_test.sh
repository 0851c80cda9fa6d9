#!/usr/bin/env bash
# ethcall logs against a real node (anvil, npm), with LogDemo compiled by solc at test time:
# decoding (indexed dynamic args, an anonymous event, overloads, unnamed params), --address and
# --topic filters, block ranges in small chunks, --follow over http, ws and ipc, checkpoint resume
# across a restart with no gap and no duplicate, reorgs (anvil_reorg, evm_revert) giving
# "removed":true, and each failure's exit code.
source "$(dirname "$0")/lib.sh"
start_anvil --ipc "$T/anvil.ipc"
export ETH_RPC_URL=$ANVIL_URL
WS_URL=${ANVIL_URL/http:/ws:}
IPC=$T/anvil.ipc
write_dev_key
FOLLOWERS=()
trap 'for p in "${FOLLOWERS[@]}"; do kill $p 2>/dev/null; done; kill $ANVIL_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

# jq-like: evaluates a JS expression over the JSON Lines on stdin as `rs` (an array of records).
jl() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
    const rs=s.split("\n").filter(Boolean).map(l=>JSON.parse(l));
    const v=(new Function("rs","return ("+process.argv[1]+")"))(rs);
    console.log(typeof v==="string"?v:JSON.stringify(v))})' "$1"
}
send() { ethcall send "$C" "$@" --private-key-file "$T/key" >/dev/null || bad "send $*"; }
# wait_lines FILE N: until FILE has at least N lines, at most 30 s. False on timeout.
wait_lines() {
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
# follow NAME ARGS...: starts `ethcall logs --follow ARGS` in the background, output to $T/NAME.out.
follow() {
  local name=$1
  shift
  ethcall logs --follow --abi "$ABI" --address "$C" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  FOLLOWER=$!
  FOLLOWERS+=("$FOLLOWER")
}
# stop_follower: SIGTERM, then its exit status in $status.
stop_follower() {
  kill -TERM "$FOLLOWER"
  wait "$FOLLOWER"
  status=$?
}
ticks() { jl 'rs.filter(r=>r.event==="Tick").map(r=>r.args.i).join(" ")'; }
seq_list() { seq -s ' ' "$1" "$2"; }

node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/LogDemo.sol" "$T/solc" >/dev/null 2>&1 ||
  { bad "solc compiles LogDemo.sol"; finish; exit; }
ABI=$T/solc/LogDemo.abi
C=$(ethcall deploy --bin "$T/solc/LogDemo.bin" --private-key-file "$T/key" | jl 'rs[0].address')
check "LogDemo deployed" test "${#C}" = 42
start=$(($(ethcall block-number) + 1))

# ---- decoding each kind of event ------------------------------------------------------------
send 'tagged(string,bytes,uint256,string)' hello 0x0102 7 'plain text'
send 'anon(uint256)' 5
send 'over1(uint256)' 1
send 'over2(uint256)' 2
send 'unnamed(uint256)' 3
run ethcall logs --abi "$ABI" --address "$C" --from-block $start
expect "logs --abi over a range" 0
printf '%s\n' "$out" >"$T/all"
check "five logs, in order" test "$(jl 'rs.map(r=>r.event).join(",")' <"$T/all")" = "Tagged,,Over,Over,Unnamed"
check "indexed string: the topic (keccak of the text)" test "$(jl 'rs[0].args.tag' <"$T/all")" = "$(ethcall keccak hello)"
check "indexed bytes: the topic (keccak of the bytes)" test "$(jl 'rs[0].args.blob' <"$T/all")" = "$(ethcall keccak 0x0102)"
check "indexed uint and unindexed string decoded" test "$(jl '[rs[0].args.n,rs[0].args.text]' <"$T/all")" = '[7,"plain text"]'
check "record shape" test "$(jl 'Object.keys(rs[0]).sort().join(",")' <"$T/all")" = \
  "address,args,block_hash,block_number,event,log_index,removed,signature,tx_hash"
check "signature is canonical" test "$(jl 'rs[0].signature' <"$T/all")" = "Tagged(string,bytes,uint256,string)"
check "address checksummed, numbers are numbers" test "$(jl '[rs[0].address, typeof rs[0].block_number, rs[0].log_index, rs[0].removed]' <"$T/all")" = "[\"$C\",\"number\",0,false]"
check "block_number is the first block" test "$(jl 'rs[0].block_number' <"$T/all")" = "$start"
check "anonymous event without --event: undecoded, topics and data" test \
  "$(jl '[rs[1].event, rs[1].topics.length, rs[1].data.length]' <"$T/all")" = "[null,1,66]"
check "overloads told apart by topic 0" test "$(jl 'rs[2].signature+" "+rs[3].signature' <"$T/all")" = "Over(uint256) Over(uint256,address)"
check "overload args" test "$(jl 'JSON.stringify([rs[2].args,rs[3].args])' <"$T/all")" = "[{\"a\":1},{\"a\":2,\"b\":\"$DEV0\"}]"
check "unnamed params keyed by position" test "$(jl 'JSON.stringify(rs[4].args)' <"$T/all")" = "{\"0\":3,\"1\":\"$DEV0\"}"

run ethcall logs --abi "$ABI" --event Anon --address "$C" --from-block $start
expect "--event names the anonymous event" 0
check "anonymous event decoded" test "$(echo "$out" | jl 'JSON.stringify(rs.map(r=>[r.event,r.args]))')" = "[[\"Anon\",{\"value\":5,\"who\":\"$DEV0\"}]]"
run ethcall logs --abi "$ABI" --event Over --from-block $start
expect "--event NAME with overloads" 0
check "both overloads (topic 0 any of them)" test "$(echo "$out" | jl 'rs.map(r=>r.args.a).join()')" = "1,2"
run ethcall logs --event 'Over(uint256 a, address indexed b)' --from-block $start
expect "--event SIGNATURE without --abi" 0
check "only that overload" test "$(echo "$out" | jl 'rs.map(r=>r.signature).join()')" = "Over(uint256,address)"
run ethcall logs --from-block $start --address "$C"
expect "no --abi" 0
check "every log undecoded" test "$(echo "$out" | jl 'rs.filter(r=>r.event===null&&r.topics&&r.data).length')" = 5

# ---- filters --------------------------------------------------------------------------------------
run ethcall logs --abi "$ABI" --event Over --topic "$DEV0" --from-block $start
expect "--topic after the event's topic 0 (an address, padded)" 0
check "--topic selects the indexed address" test "$(echo "$out" | jl 'rs.map(r=>r.args.a).join()')" = 2
over1=$(ethcall keccak 'Over(uint256)') over2=$(ethcall keccak 'Over(uint256,address)')
run ethcall logs --abi "$ABI" --topic "$over1,$over2" --from-block $start
expect "--topic list without --event: position 0" 0
check "any of the listed topics" test "$(echo "$out" | jl 'rs.map(r=>r.signature).join()')" = "Over(uint256),Over(uint256,address)"
run ethcall logs --abi "$ABI" --topic null --topic "$DEV0" --from-block $start
expect "--topic null: any" 0
check "topic 1 = the sender: Anon? no, Over(2) and Unnamed" test "$(echo "$out" | jl 'rs.map(r=>r.event).join()')" = "Over,Unnamed"
run ethcall logs --abi "$ABI" --address 0x0000000000000000000000000000000000000001 --address "$C" --from-block $start --to-block $((start + 1))
expect "--address repeated (any of them) and --to-block" 0
check "two blocks' logs" test "$(echo "$out" | jl 'rs.length')" = 2
run ethcall logs --abi "$ABI" --address 0x0000000000000000000000000000000000000001 --from-block $start
expect "another address: nothing" 0 ""

# ---- ranges in chunks -------------------------------------------------------------------------------
t0=$(($(ethcall block-number) + 1))
for i in $(seq 0 11); do
  send 'tick(uint256,uint256)' $((i * 3)) 3
  ethcall rpc anvil_mine '["0x2"]' >/dev/null
done
t1=$(ethcall block-number)
run ethcall logs --abi "$ABI" --event Tick --from-block $t0 --to-block $t1 --chunk-size 2
expect "36 blocks in chunks of 2" 0
check "each log once, in order" test "$(echo "$out" | ticks)" = "$(seq_list 0 35)"
big=$out
run ethcall logs --abi "$ABI" --event Tick --from-block $t0 --to-block $t1 --chunk-size 1
check "chunks of 1: the same lines" test "$out" = "$big"
run ethcall logs --abi "$ABI" --event Tick --from-block $t0 --to-block $t1
check "one chunk: the same lines" test "$out" = "$big"
run ethcall logs --abi "$ABI" --event Tick --from-block $((t0 + 3)) --to-block $((t0 + 3))
check "one block: its three logs" test "$(echo "$out" | ticks)" = "3 4 5"
run ethcall logs --abi "$ABI" --event Tick --from-block latest
expect "default range: the latest block (empty)" 0 ""

# A node that refuses eth_getLogs over more than 4 blocks, as providers do (a proxy to anvil).
pport=$(free_port)
node -e 'const http=require("http"),[port,target,max]=process.argv.slice(1);
  http.createServer((req,res)=>{let b="";req.on("data",d=>b+=d).on("end",()=>{
    const j=JSON.parse(b),p=j.params&&j.params[0];
    if(j.method==="eth_getLogs"&&p.fromBlock&&parseInt(p.toBlock,16)-parseInt(p.fromBlock,16)+1>+max){
      res.setHeader("content-type","application/json");
      return res.end(JSON.stringify({jsonrpc:"2.0",id:j.id,error:{code:-32000,message:"query returned more than 10000 results"}}))}
    const f=http.request(target,{method:"POST",headers:{"content-type":"application/json"}},r=>r.pipe(res));f.end(b)})
  }).listen(+port,"127.0.0.1")' "$pport" "$ANVIL_URL" 4 &
FOLLOWERS+=($!)
PROXY=http://127.0.0.1:$pport
deadline=$((SECONDS + 30))
until ethcall chain-id --rpc-url "$PROXY" --rpc-timeout 1s >/dev/null 2>&1 || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
run ethcall logs --rpc-url "$PROXY" --abi "$ABI" --event Tick --from-block $t0 --to-block $t1
expect "a node that refuses long ranges: still done" 0
check "halved chunks: the same lines" test "$out" = "$big"
expect_err "says the chunk was halved" "chunks of"
run ethcall logs --rpc-url "$PROXY" --abi "$ABI" --event Tick --from-block $t0 --to-block $t1 --chunk-size 5
check "from 5 to 2 blocks: the same lines" test "$out" = "$big"

# ---- --follow over http with a checkpoint; resume after a restart ----------------------------------
next=$(($(ethcall block-number) + 1))
follow http --poll-interval 100ms --event Tick --from-block $next --checkpoint "$T/cp"
send 'tick(uint256,uint256)' 100 2
check "http follower picks up new logs" wait_lines "$T/http.out" 2
send 'tick(uint256,uint256)' 102 1
check "and the next block's" wait_lines "$T/http.out" 3
stop_follower
check "SIGTERM: exit 0" test "$status" = 0
check "checkpoint written" test -s "$T/cp"
check "checkpoint holds the last block" test "$(jl 'rs[0].block' <"$T/cp")" = "$(ethcall block-number)"
cp "$T/http.out" "$T/run1"
send 'tick(uint256,uint256)' 103 2  # while nobody follows
ethcall rpc anvil_mine '["0x3"]' >/dev/null
send 'tick(uint256,uint256)' 105 1
follow http --poll-interval 100ms --event Tick --checkpoint "$T/cp" --from-block 0  # the checkpoint wins over --from-block
check "restarted follower catches up" wait_lines "$T/http.out" 3
send 'tick(uint256,uint256)' 106 2
check "then follows" wait_lines "$T/http.out" 5
stop_follower
check "second run exit 0" test "$status" = 0
check "the two runs: every log exactly once, in order" test "$(cat "$T/run1" "$T/http.out" | ticks)" = "$(seq_list 100 107)"
run ethcall logs --abi "$ABI" --event Tick --checkpoint "$T/cp"
expect "one-shot run from the checkpoint at the head: nothing new" 0 ""
send 'tick(uint256,uint256)' 108 1
run ethcall logs --abi "$ABI" --event Tick --checkpoint "$T/cp"
check "cron-style run: only what came since" test "$(echo "$out" | ticks)" = 108
run ethcall logs --abi "$ABI" --event Tick --checkpoint "$T/cp"
expect "and the next run: nothing again" 0 ""

send 'tick(uint256,uint256)' 109 1
b=$(ethcall block-number)
run ethcall logs --abi "$ABI" --event Tick --from-block $b --confirmations 2
expect "--confirmations 2: the head's log is not deep enough" 0 ""
ethcall rpc anvil_mine '["0x2"]' >/dev/null
run ethcall logs --abi "$ABI" --event Tick --from-block $b --confirmations 2
check "--confirmations 2: two blocks later it is" test "$(echo "$out" | ticks)" = 109

# ---- --follow over ws and ipc -------------------------------------------------------------------------
for kind in ws ipc; do
  url=$WS_URL
  [ $kind = ipc ] && url=$IPC
  # a long poll interval: the newHeads subscription must wake it
  follow $kind --event Tick --rpc-url "$url" --poll-interval 30s --from-block $(($(ethcall block-number) + 1))
  send 'tick(uint256,uint256)' 200 2
  check "$kind follower picks up new logs" wait_lines "$T/$kind.out" 2
  send 'tick(uint256,uint256)' 202 1
  check "$kind follower: the next block's" wait_lines "$T/$kind.out" 3
  stop_follower
  check "$kind: SIGTERM exit 0" test "$status" = 0
  check "$kind: each once" test "$(ticks <"$T/$kind.out")" = "200 201 202"
done

# ---- reorgs ------------------------------------------------------------------------------------------
follow reorg --poll-interval 100ms --event Tick --checkpoint "$T/cp-reorg" --from-block $(($(ethcall block-number) + 1))
send 'tick(uint256,uint256)' 300 1
send 'tick(uint256,uint256)' 301 2
check "reorg follower saw both blocks" wait_lines "$T/reorg.out" 3
ethcall rpc anvil_reorg '[1, []]' >/dev/null || bad "anvil_reorg"
check "anvil_reorg: the orphaned block's logs come again" wait_lines "$T/reorg.out" 5
check "with removed:true" test "$(jl 'JSON.stringify(rs.slice(3).map(r=>[r.args.i,r.removed]))' <"$T/reorg.out")" = '[[301,true],[302,true]]'
check "the removed records are those emitted" test "$(jl 'rs[3].block_hash===rs[1].block_hash && rs[3].tx_hash===rs[1].tx_hash' <"$T/reorg.out")" = true
snap=$(ethcall rpc evm_snapshot | tr -d '"')
send 'tick(uint256,uint256)' 310 1
check "a log before the revert" wait_lines "$T/reorg.out" 6
ethcall rpc evm_revert "[\"$snap\"]" >/dev/null
ethcall rpc anvil_mine '["0x2"]' >/dev/null
send 'tick(uint256,uint256)' 320 1
check "evm_revert + new blocks: removed, then the new chain's log" wait_lines "$T/reorg.out" 8
check "removed then new" test "$(jl 'JSON.stringify(rs.slice(5).map(r=>[r.args.i,r.removed]))' <"$T/reorg.out")" = '[[310,false],[310,true],[320,false]]'
stop_follower
check "reorg follower exit 0" test "$status" = 0
check "checkpoint hash is the node's" test "$(jl 'rs[0].hash' <"$T/cp-reorg")" = \
  "$(ethcall block "$(jl 'rs[0].block' <"$T/cp-reorg")" | jl 'rs[0].hash')"

# a reorg while no follower runs: the restart starts again at the fork
follow rr --poll-interval 100ms --event Tick --checkpoint "$T/cp-rr" --from-block $(($(ethcall block-number) + 1))
snap=$(ethcall rpc evm_snapshot | tr -d '"')
send 'tick(uint256,uint256)' 400 1
check "a log, then the follower stops" wait_lines "$T/rr.out" 1
stop_follower
ethcall rpc evm_revert "[\"$snap\"]" >/dev/null
ethcall rpc anvil_mine '["0x2"]' >/dev/null
send 'tick(uint256,uint256)' 410 1
follow rr2 --poll-interval 100ms --event Tick --checkpoint "$T/cp-rr"
check "restarted after a reorg: the new chain's log" wait_lines "$T/rr2.out" 1
deadline=$((SECONDS + 30))
until [ "$(tail -1 "$T/rr2.out" | jl 'rs[0]&&rs[0].args.i')" = 410 ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
stop_follower
check "restart after a reorg: orphaned logs only as removed, then the new one" test \
  "$(jl 'rs.filter(r=>r.args.i===400).every(r=>r.removed)+" "+JSON.stringify(rs.filter(r=>!r.removed).map(r=>r.args.i))' <"$T/rr2.out")" = 'true [410]'
grep -q "reorg: blocks from" "$T/rr2.err" && ok || bad "the restarted follower logs the reorg" "$(cat "$T/rr2.err")"
grep -q deeper "$T/rr2.err" && bad "the fork is found among the blocks remembered" "$(cat "$T/rr2.err")" || ok

# ---- failures -------------------------------------------------------------------------------------------
echo '{"block": "twelve"' >"$T/corrupt"
run ethcall logs --abi "$ABI" --checkpoint "$T/corrupt"
expect "corrupt checkpoint: 65" 65
expect_err "names the file" "$T/corrupt"
mkdir "$T/cpdir"
run ethcall logs --abi "$ABI" --checkpoint "$T/cpdir"
expect "unreadable checkpoint: 66" 66
run ethcall logs --abi "$ABI" --checkpoint "$T/no-such-dir/cp" --from-block latest
expect "checkpoint cannot be written: 74" 74
dead=http://127.0.0.1:$(free_port)
run ethcall logs --rpc-url "$dead" --rpc-timeout 1s
expect "unreachable node: 69" 69
expect_err "names the URL" "$dead"
run ethcall logs --abi "$ABI" --event NoSuchEvent
expect "unknown event: 65 (as call's unknown function)" 65
expect_err "names the event" "NoSuchEvent"
run ethcall logs --topic 0xzz
expect "bad --topic: 64" 64
run ethcall logs --address 0x1234
expect "bad --address: 64" 64
run ethcall logs --topic "$DEV0" "$DEV0"
expect "--topic takes one value per flag" 64
run ethcall logs --follow --to-block 5
expect "--follow with --to-block: 64" 64
run ethcall logs --from-block yesterday
expect "bad --from-block: 64" 64
run ethcall logs --chunk-size 0
expect "--chunk-size 0: 64" 64

# ---- a closed stdout: quiet, exit 0, checkpoint not past what was written ------------------------------
ethcall logs --abi "$ABI" --event Tick --from-block $t0 --to-block $t1 --chunk-size 1 --checkpoint "$T/cp-pipe" 2>"$T/pipe.err" | head -1 >/dev/null
st=${PIPESTATUS[0]}
check "EPIPE: exit 0" test "$st" = 0
check "EPIPE: nothing on stderr" test ! -s "$T/pipe.err"
[ -s "$T/cp-pipe" ] && check "EPIPE: checkpoint not past the last block written" test "$(jl 'rs[0].block' <"$T/cp-pipe")" -lt "$t1"

finish
