#!/usr/bin/env bash
# ethcall against its references, all measured in this run on this machine (design.md section 5):
#   0. start-up: each program's `--version` beside ethcall (the same bin/) vs /bin/true
#      (goal, issue 16: <= 2 ms each);
#   1. wall time per process of one contract read: `ethcall call` vs one eth_call posted by curl
#      vs foundry's `cast call` (goal, issue 16: ethcall <= 0.15 of cast);
#   2. JSON-RPC round trips per call, counted by a proxy (goal: 1; cast makes 5);
#   3. `ethcall batch` calls/s vs the node's raw batched eth_call capacity: the same calls as
#      ready-made batch bodies posted over as many kept-alive connections (goal: >= 80%).
#
#   bench/ethcall/run.sh BUILD_DIR/bin/ethcall [--runs 40] [--calls 20000] [--repeat 5]
#
# Needs node, curl, `npm ci` in tests/ (anvil, solc, ethers) and in bench/ (cast); the Makefile.dist
# bench target does all of that. Prints medians; every contender's answer is checked first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../.." && pwd)"
usage() { echo "usage: $0 PATH/TO/ethcall [--runs N] [--calls N] [--repeat N]" >&2; exit 64; }

[[ $# -ge 1 ]] || usage
ethcall="$(realpath "$1")"; shift
runs=40 calls=20000 repeat=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="${2:?}"; shift 2 ;;
    --calls) calls="${2:?}"; shift 2 ;;
    --repeat) repeat="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
anvil="$src/tests/node_modules/.bin/anvil"
cast="$src/bench/node_modules/.bin/cast"
[[ -x "$ethcall" ]] || { echo "$0: $ethcall: not an executable (build first)" >&2; exit 66; }
[[ -x "$anvil" ]] || { echo "$0: $anvil missing: run npm ci in tests/" >&2; exit 69; }
[[ -x "$cast" ]] || { echo "$0: $cast missing: run npm ci in bench/" >&2; exit 69; }
command -v curl >/dev/null || { echo "$0: curl missing" >&2; exit 69; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ethcall-bench-XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds, or fails naming WHAT.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || { echo "$0: $what not ready within ${limit}s" >&2; exit 69; }
    sleep 0.05
  done
}

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$anvil" --host 127.0.0.1 --port "$port" --silent >"$work/anvil.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port"
wait_for "anvil on $url" 60 "$ethcall" chain-id --rpc-url "$url"

node "$src/tests/tools/solc_compile.mjs" "$src/tests/fixtures/contracts/BatchDemo.sol" "$work" >/dev/null 2>"$work/solc.log" ||
  { echo "$0: compiling BatchDemo failed:" >&2; cat "$work/solc.log" >&2; exit 70; }
dev=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
addr=$("$ethcall" deploy --rpc-url "$url" --unlocked --from "$dev" --bin "$work/BatchDemo.bin" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).address))')
[[ $addr == 0x* ]] || { echo "$0: deploying BatchDemo failed" >&2; exit 70; }

get_sig='get()(uint256)'
body='{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"'"$addr"'","data":"0x6d4ce63c"},"latest"]}'
c_ethcall() { "$ethcall" call "$addr" "$get_sig" --rpc-url "$1"; }
c_curl() { curl -s -X POST -H 'content-type: application/json' --data "$body" "$1"; }
c_cast() { "$cast" call "$addr" "$get_sig" --rpc-url "$1"; }

# Every contender must give the right answer before it is timed.
[[ $(c_ethcall "$url") == 2020 ]] || { echo "$0: ethcall call did not print 2020" >&2; exit 70; }
[[ $(c_curl "$url") == *'"result":"0x00000000000000000000000000000000000000000000000000000000000007e4"'* ]] ||
  { echo "$0: curl's eth_call did not return 2020" >&2; exit 70; }
[[ $(c_cast "$url") == 2020* ]] || { echo "$0: cast call did not print 2020" >&2; exit 70; }

# --- 1. wall time per process, contenders interleaved so they share the machine's load ---
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for name in ethcall curl cast; do c_$name "$url" >/dev/null; : >"$work/wall.$name"; done   # warm the page cache
for ((i = 0; i < runs; i++)); do
  for name in ethcall curl cast; do
    t0=$EPOCHREALTIME
    c_$name "$url" >/dev/null
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$work/wall.$name"
  done
done
w_ethcall=$(median <"$work/wall.ethcall") w_curl=$(median <"$work/wall.curl") w_cast=$(median <"$work/wall.cast")

# --- 0. start-up: --version of every program in ethcall's bin/, interleaved with /bin/true ---
bin=$(dirname "$ethcall")
programs=()
for p in ethcall abigen-cpp lookupd nsq-broker nsq-pub nsq-tail push-route ws-push; do
  [[ -x $bin/$p ]] && programs+=("$p")
done
: >"$work/start.true"
for p in "${programs[@]}"; do "$bin/$p" --version >/dev/null; : >"$work/start.$p"; done
for ((i = 0; i < runs; i++)); do
  for p in true "${programs[@]}"; do
    if [[ $p == true ]]; then cmd=(/bin/true); else cmd=("$bin/$p" --version); fi
    t0=$EPOCHREALTIME
    "${cmd[@]}" >/dev/null
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$work/start.$p"
  done
done
s_true=$(median <"$work/start.true")
startup_table=$(
  printf '%-40s %12s %12s\n' "start-up: --version, wall per process" "ms" "x /bin/true"
  printf '%-40s %12.2f %11.2fx\n' "/bin/true (reference)" "$s_true" 1
  met=met
  for p in "${programs[@]}"; do
    m=$(median <"$work/start.$p")
    awk -v p="$p" -v m="$m" -v t="$s_true" 'BEGIN { printf "%-40s %12.2f %11.2fx\n", p, m, m / t }'
    awk -v m="$m" 'BEGIN { exit !(m > 2) }' && met="NOT met"
  done
  printf '(%d runs each, interleaved)  goal every program <= 2 ms: %s\n' "$runs" "$met"
)

# --- 2. round trips per call, through a counting proxy ---
node "$here/count_proxy.mjs" "$url" "$work/proxy.log" "$work/proxy.port" &
pids+=($!)
wait_for "the counting proxy" 10 test -s "$work/proxy.port"
purl="http://127.0.0.1:$(cat "$work/proxy.port")"
declare -A trips methods
for name in ethcall curl cast; do
  : >"$work/proxy.log"
  c_$name "$purl" >/dev/null
  trips[$name]=$(wc -l <"$work/proxy.log")
  methods[$name]=$(paste -sd' ' "$work/proxy.log")
done

# --- 3. batch throughput: ethcall batch vs raw batch bodies, same calls, same connections ---
node "$here/gen_batch.mjs" "$addr" "$calls" 100 "$work/calls.jsonl" "$work/bodies.json"
: >"$work/rate.ethcall"; : >"$work/rate.raw"
for ((i = 0; i < repeat; i++)); do
  node "$here/raw_batch_load.mjs" "$url" "$work/bodies.json" 2 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).calls_per_s))' >>"$work/rate.raw"
  t0=$EPOCHREALTIME
  "$ethcall" batch --rpc-url "$url" --batch-size 100 --concurrency 2 --input "$work/calls.jsonl" >"$work/out.jsonl"
  t1=$EPOCHREALTIME
  ok=$(grep -c '"result"' "$work/out.jsonl" || true)
  [[ $ok -eq $calls ]] || { echo "$0: ethcall batch answered $ok of $calls calls with a result" >&2; exit 70; }
  awk -v n="$calls" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }' >>"$work/rate.ethcall"
done
r_ethcall=$(median <"$work/rate.ethcall") r_raw=$(median <"$work/rate.raw")

awk -v e="$w_ethcall" -v c="$w_curl" -v k="$w_cast" -v runs="$runs" -v te="${trips[ethcall]}" \
    -v tc="${trips[curl]}" -v tk="${trips[cast]}" -v me="${methods[ethcall]}" -v mk="${methods[cast]}" \
    -v re="$r_ethcall" -v rr="$r_raw" -v calls="$calls" -v repeat="$repeat" -v cores="$(nproc)" \
    -v startup="$startup_table" 'BEGIN {
  printf "ethcall benchmarks against anvil, %d cores, medians\n\n", cores
  printf "%s\n\n", startup
  printf "%-40s %12s %12s\n", "one contract read, wall per process", "ms", "vs cast"
  printf "%-40s %12.2f %11.2fx\n", "cast call (reference)", k, 1
  printf "%-40s %12.2f %11.2fx\n", "curl, one eth_call (floor)", c, k / c
  printf "%-40s %12.2f %11.2fx\n", "ethcall call", e, k / e
  printf "(%d runs each, interleaved)  ethcall/cast %.3f, goal <= 0.15: %s\n\n", runs, e / k, (e <= 0.15 * k ? "met" : "NOT met")
  printf "%-40s %12s   %s\n", "JSON-RPC round trips per read", "trips", "methods"
  printf "%-40s %12d   %s\n", "cast call", tk, mk
  printf "%-40s %12d\n", "curl", tc
  printf "%-40s %12d   %s\n", "ethcall call", te, me
  printf "goal 1 round trip: %s\n\n", (te == 1 ? "met" : "NOT met")
  printf "%-40s %12s %12s\n", "batched eth_call, 100/batch, 2 conns", "calls/s", "of raw"
  printf "%-40s %12.0f %11.0f%%\n", "raw batch bodies (reference)", rr, 100
  printf "%-40s %12.0f %11.0f%%\n", "ethcall batch", re, 100 * re / rr
  printf "(%d calls, median of %d)  goal >= 80%% of raw: %s\n", calls, repeat, (re >= 0.8 * rr ? "met" : "NOT met")
}'
