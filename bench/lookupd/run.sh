#!/usr/bin/env bash
# lookupd under load, measured in this run on this machine (not CI):
#   1. GET /lookup req/s with 100 topics, each held by 10 brokers (one channel per broker), with
#      wrk over kept-alive connections (one thread, requests built by a Lua hook); reference:
#      GET /ping on the same server in the same run, built by the same hook (the HTTP floor);
#   2. REGISTER/UNREGISTER churn on one broker connection, commands/s with a window of commands
#      in flight and one at a time; reference: PING at the same window (the protocol floor).
#
#   bench/lookupd/run.sh BUILD_DIR/bin/lookupd [--seconds 10] [--connections 32]
#
# Needs node and wrk (Debian package wrk; `make -f Makefile.dist deps-bench` installs it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { echo "usage: $0 PATH/TO/lookupd [--seconds N] [--connections N]" >&2; exit 64; }
[[ $# -ge 1 ]] || usage
lookupd="$(realpath "$1")"; shift
seconds=10 connections=32
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?}"; shift 2 ;;
    --connections) connections="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
[[ -x "$lookupd" ]] || { echo "$0: $lookupd: not an executable (build first)" >&2; exit 66; }
command -v wrk >/dev/null || { echo "$0: wrk missing (apt-get install wrk)" >&2; exit 69; }
command -v node >/dev/null || { echo "$0: node missing" >&2; exit 69; }

work="$(mktemp -d "${TMPDIR:-/tmp}/lookupd-bench-XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

tcp=$(free_port) http=$(free_port)
"$lookupd" -q --tcp-address 127.0.0.1:$tcp --http-address 127.0.0.1:$http 2>"$work/lookupd.log" &
pids+=($!)
lookupd_pid=$!
until curl -sf "http://127.0.0.1:$http/ping" >/dev/null 2>&1; do sleep 0.05; done

mkfifo "$work/hold"
node "$here/brokers.mjs" hold $tcp 10 100 <"$work/hold" >"$work/brokers.out" &
pids+=($!)
exec 3>"$work/hold"
until grep -q ready "$work/brokers.out" 2>/dev/null; do sleep 0.05; done
producers=$(curl -s "http://127.0.0.1:$http/lookup?topic=topic_42" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.producers.length+" producers, "+j.channels.length+" channels")})')
topics=$(curl -s "http://127.0.0.1:$http/topics" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).topics.length))')
echo "lookupd $("$lookupd" --version | cut -d' ' -f2-); $topics topics; /lookup?topic=topic_42: $producers"
bytes=$(curl -s "http://127.0.0.1:$http/lookup?topic=topic_42" | wc -c)

rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$1"; }
lat() { sed -n 's/^ *Latency *\([0-9.]*[a-z]*\).*/\1/p' "$1"; }
wrk -t1 -c"$connections" -d"${seconds}s" -s "$here/ping.lua" "http://127.0.0.1:$http/" >"$work/ping.txt"
wrk -t1 -c"$connections" -d"${seconds}s" -s "$here/lookup.lua" "http://127.0.0.1:$http/" >"$work/lookup.txt"
ping_rps=$(rps "$work/ping.txt") lookup_rps=$(rps "$work/lookup.txt")
printf '/ping   (reference): %10.0f req/s  mean latency %s  (wrk -t1 -c%s, %ss)\n' "$ping_rps" "$(lat "$work/ping.txt")" "$connections" "$seconds"
printf '/lookup (%s bytes):  %10.0f req/s  mean latency %s  = %.2f of /ping\n' "$bytes" "$lookup_rps" "$(lat "$work/lookup.txt")" \
  "$(echo "$lookup_rps / $ping_rps" | bc -l)"
grep -E "Non-2xx|Socket errors" "$work/lookup.txt" "$work/ping.txt" || true

churn=$(node "$here/brokers.mjs" churn $tcp $((seconds / 2 > 0 ? seconds / 2 : 1)) 100)
node -e 'const j=JSON.parse(process.argv[1]);
console.log(`PING (reference, 100 in flight):        ${String(j.ping_per_s).padStart(10)} commands/s`);
console.log(`REGISTER/UNREGISTER (100 in flight):    ${String(j.churn_per_s).padStart(10)} commands/s = ${(j.churn_per_s/j.ping_per_s).toFixed(2)} of PING`);
console.log(`REGISTER one at a time (round trips):   ${String(j.serial_register_per_s).padStart(10)} commands/s`);' "$churn"
rss=$(ps -o rss= -p "$lookupd_pid")
echo "lookupd RSS after the run: ${rss} KiB"
exec 3>&-
