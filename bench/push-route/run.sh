#!/usr/bin/env bash
# push-route: routed messages/s with 10k online users on 2 ws-push nodes, against redis-benchmark's
# pipelined GET rate on the same redis-server in the same run (goal >= 50%), and p50/p99 latency at
# 10k msgs/s from nsq-pub's stdin through nsq-broker, nsq-tail and push-route to the WebSocket
# client (goal p99 < 10 ms on loopback), beside the same from push-route's own stdin (so the NSQ
# part and the routing part can be told apart). Issue 13.
# Builds the programs and the load client (bench/push-route/route_bench.cpp, on ws_bench's client
# bench/ws-push/ws_load.hpp), starts redis-server, two ws-push nodes (--redis, --history-size 0:
# history is push-route's) and nsq-broker with `nsq-tail -t route_bench -c push | push-route`
# reading from it, all on 127.0.0.1 and free ports, files in a temp dir; measures the reference;
# then route_bench logs 10k users in (u<i> on node i % 2) and starts each push-route (or nsq-pub)
# it feeds itself. Prints one table. Everything started is stopped on exit.
# Usage: bench/push-route/run.sh [BUILD_DIR [route_bench flags...]]   (heavy: run it under the
# build lock on a shared box). route_bench flags go last, e.g. --msgs 100000 --rate 5000.
# PUSH_ROUTE_WRAPPER is put before the push-route commands route_bench starts, e.g.
# PUSH_ROUTE_WRAPPER='perf record -g -o /tmp/push-route.$$.perf --' (sh expands $$: one file a run).
# NSQ_TAIL_FLAGS are added to the pipeline's nsq-tail (e.g. --max-in-flight 1000), WS_PUSH_FLAGS
# to both nodes' flags.
set -eu
build=${1:-build}
shift || true
cmake --build "$build" --target ws-push push-route nsq-pub nsq-tail nsq-broker route_bench >&2
bin=$(cd "$build/bin" && pwd)
for tool in redis-server redis-cli redis-benchmark node; do
  command -v $tool >/dev/null || { echo "push-route bench: $tool is missing (make -f Makefile.dist deps)" >&2; exit 69; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/route-bench.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard"
head -c 32 /dev/urandom | base64 -w0 >"$dir/secret"  # HS256 wants at least 32 bytes
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# until_ok SECONDS WHAT CMD...: runs CMD until it succeeds; exits 69 naming WHAT after SECONDS.
until_ok() {
  local limit=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "push-route bench: timed out after ${limit}s: $what" >&2; tail -n 5 "$dir"/*.log >&2; exit 69; }
    sleep 0.05
  done
}

# redis-server cannot listen on port 0: a free port, and another one if it was taken meanwhile.
for _ in 1 2 3 4 5; do
  redis_port=$(free_port)
  : >"$dir/redis.log"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
  redis_pid=$!
  pids+=("$redis_pid")
  deadline=$((SECONDS + 20))
  until grep -q 'Ready to accept connections' "$dir/redis.log" || ! kill -0 "$redis_pid" 2>/dev/null ||
    [ $SECONDS -ge $deadline ]; do sleep 0.05; done
  grep -q 'Ready to accept connections' "$dir/redis.log" && break
  grep -q 'Address already in use' "$dir/redis.log" || { cat "$dir/redis.log" >&2; exit 69; }
done
redis=redis://127.0.0.1:$redis_port

# listening LOG PREFIX: the port that follows "PREFIX 127.0.0.1:" in LOG.
listening() { sed -n "s/.*$2 [0-9.]*:\([0-9]*\).*/\1/p" "$1" | head -n 1; }
node_pids=() ws_ports=() push_ports=()
for n in a b; do
  # shellcheck disable=SC2086  # WS_PUSH_FLAGS: words
  "$bin/ws-push" --jwt-secret-file "$dir/secret" --listen 127.0.0.1:0 --push-listen 127.0.0.1:0 --redis "$redis" \
    --node-id $n --history-size 0 --max-connections 1000000 ${WS_PUSH_FLAGS:-} 2>"$dir/ws-push-$n.log" &
  pids+=($!) node_pids+=($!)
done
"$bin/nsq-broker" --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:0 2>"$dir/nsq-broker.log" &
nsqd_pid=$!
pids+=($!)
for n in a b; do
  until_ok 20 "ws-push $n listens" grep -q 'push API: listening on' "$dir/ws-push-$n.log"
  ws_ports+=("$(listening "$dir/ws-push-$n.log" 'WebSocket: listening on')")
  push_ports+=("$(listening "$dir/ws-push-$n.log" 'push API: listening on')")
done
until_ok 20 "nsq-broker listens" grep -q 'HTTP: listening on' "$dir/nsq-broker.log"
nsqd_tcp=127.0.0.1:$(listening "$dir/nsq-broker.log" 'TCP: listening on')
nsqd_http=127.0.0.1:$(listening "$dir/nsq-broker.log" 'HTTP: listening on')

# The pipeline's consumer side, joined by a FIFO so that each process is started (and stopped) here.
route="$bin/push-route --redis $redis --stats"
mkfifo "$dir/tail.fifo"
$route <"$dir/tail.fifo" >"$dir/pipeline-undelivered.jsonl" 2>"$dir/pipeline-route.log" &
pids+=($!) more_pids=("$nsqd_pid" $!)
# shellcheck disable=SC2086  # NSQ_TAIL_FLAGS: words
"$bin/nsq-tail" -t route_bench -c push --nsqd-tcp-address "$nsqd_tcp" ${NSQ_TAIL_FLAGS:-} >"$dir/tail.fifo" 2>"$dir/nsq-tail.log" &
pids+=($!) more_pids+=($!)
until_ok 20 "nsq-tail subscribed to route_bench/push" \
  bash -c "curl -sf 'http://$nsqd_http/stats?format=json&topic=route_bench' | grep -q '\"client_id\"'"

# The reference: redis-benchmark's GET on the same redis-server, one connection with pipelines of
# 1000 commands: the shape of push-route's look-ups (one connection, one pipeline per batch of up
# to 1000 input lines).
ref_what="redis-benchmark -t get -c 1 -P 1000 -n 1000000"
ref_rate=$(redis-benchmark -p "$redis_port" -t get -c 1 -P 1000 -n 1000000 -q | tr '\r' '\n' |
  sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
[ -n "$ref_rate" ] || { echo "push-route bench: no rate from redis-benchmark" >&2; exit 69; }

echo "push-route ($("$bin/push-route" --version | head -1)), $(nproc) cores, loopback," \
  "$(redis-server --version | cut -d' ' -f1-3); $(date -u +%FT%TZ)"
"$build/bench/route_bench" --ports "$(IFS=,; echo "${ws_ports[*]}")" --push-ports "$(IFS=,; echo "${push_ports[*]}")" \
  --pids "$(IFS=,; echo "${node_pids[*]}")" --more-pids "$(IFS=,; echo "${more_pids[*]}")" \
  --more-names "nsq-broker, the pipeline's push-route, nsq-tail" --redis-port "$redis_port" --redis-pid "$redis_pid" \
  --secret-file "$dir/secret" --out-dir "$dir" --ref-rate "$ref_rate" --ref-what "$ref_what" \
  --route-cmd "${PUSH_ROUTE_WRAPPER:+$PUSH_ROUTE_WRAPPER }$route" \
  --pipeline-cmd "$bin/nsq-pub -t route_bench --nsqd-tcp-address $nsqd_tcp --batch-timeout 1ms" \
  --users 10000 --msgs 200000 --rate 10000 --duration 5 "$@"
for f in "$dir"/*.log; do
  if grep -qiE 'error|warn' "$f"; then
    echo "${f##*/} (warnings and errors):"
    grep -iE 'error|warn' "$f" | head -10
  fi
done
