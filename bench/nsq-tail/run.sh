#!/usr/bin/env bash
# nsq-tail throughput to a file: a durable channel pre-filled (by nsq-pub) with 1,000,000 messages
# of ~100 bytes in nsq-broker, then `nsq-tail -n 1000000 > file` timed, at the default
# --max-in-flight (200) and at 2500, and through a pipe (| cat > file). Prints msgs/s. Not CI.
# Usage: bench/nsq-tail/run.sh [BUILD_DIR] [COUNT]  (needs nsq-broker, nsq-pub and nsq-tail built)
# Goal (issue 5): >= 3x nsq_tail's ~67k msg/s here, i.e. >= 200k msg/s.
set -eu
build=${1:-build}
count=${2:-1000000}
bin=$build/bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/nsq-tail-bench.XXXXXX")
port=$((20000 + RANDOM % 20000))
http=$((port + 1))
"$bin/nsq-broker" -q --tcp-address 127.0.0.1:$port --http-address 127.0.0.1:$http \
  --mem-queue-size $((count * 2 + 10)) &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
deadline=$((SECONDS + 10))
until curl -sf http://127.0.0.1:$http/ping >/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "nsq-broker did not start"; exit 1; }
  sleep 0.05
done
awk -v n="$count" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"n\":%d,\"pad\":\"%080d\"}\n", i, i }' >"$dir/in.jsonl"
for mif in 200 2500; do
  topic=bench$mif
  curl -sf -X POST "http://127.0.0.1:$http/topic/create?topic=$topic" >/dev/null  # as nsqd: the topic first
  curl -sf -X POST "http://127.0.0.1:$http/channel/create?topic=$topic&channel=file" >/dev/null
  "$bin/nsq-pub" -q -t $topic --nsqd-tcp-address 127.0.0.1:$port --batch-size 500 "$dir/in.jsonl"
  start=$(date +%s.%N)
  "$bin/nsq-tail" -q -t $topic -c file --nsqd-tcp-address 127.0.0.1:$port --max-in-flight $mif -n "$count" >"$dir/out"
  end=$(date +%s.%N)
  lines=$(wc -l <"$dir/out")
  awk -v n="$lines" -v s="$start" -v e="$end" -v m="$mif" \
    'BEGIN { printf "nsq-tail to a file, --max-in-flight %d: %d messages in %.2f s = %.0f msg/s\n", m, n, e - s, n / (e - s) }'
  rm -f "$dir/out"
done
# Through a pipe (FIN only once cat consumed the bytes: FIONREAD polling).
topic=benchpipe
curl -sf -X POST "http://127.0.0.1:$http/topic/create?topic=$topic" >/dev/null
curl -sf -X POST "http://127.0.0.1:$http/channel/create?topic=$topic&channel=file" >/dev/null
"$bin/nsq-pub" -q -t $topic --nsqd-tcp-address 127.0.0.1:$port --batch-size 500 "$dir/in.jsonl"
start=$(date +%s.%N)
"$bin/nsq-tail" -q -t $topic -c file --nsqd-tcp-address 127.0.0.1:$port --max-in-flight 2500 -n "$count" | cat >"$dir/out"
end=$(date +%s.%N)
lines=$(wc -l <"$dir/out")
awk -v n="$lines" -v s="$start" -v e="$end" \
  'BEGIN { printf "nsq-tail | cat > file, --max-in-flight 2500: %d messages in %.2f s = %.0f msg/s\n", n, e - s, n / (e - s) }'
