#!/usr/bin/env bash
# nsq-pub throughput: 1,000,000 lines from a file (100 B and 1 KiB JSON lines) into nsq-broker,
# against the broker's own MPUB load client in the same run (bench/nsq-broker/nsq_bench: MPUB
# batches of 200 over 2 connections). Goal (issue 5): nsq-pub >= 80% of it; to_nsq does ~12.6k msg/s.
# Usage: bench/nsq-pub/run.sh BUILD_DIR [COUNT]   (needs nsq-broker, nsq-pub and nsq_bench built)
set -eu
build=${1:-build}
count=${2:-1000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pipekit-bench-pub.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
# Every measurement gets a fresh broker: one that already holds the previous run's messages
# (1 GB at 1 KiB) would make later runs pay for its growth.
fresh_broker() {
  [ -n "$pid" ] && { kill $pid; wait $pid 2>/dev/null || true; }
  port=$((20000 + RANDOM % 20000))
  "$build/bin/nsq-broker" -q --tcp-address 127.0.0.1:$port --http-address "" --mem-queue-size 100000000 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.05; done
  echo "nsq-broker did not listen on $port" >&2
  exit 69
}

# One JSON line of exactly SIZE bytes (newline excluded) per message.
make_lines() {
  local size=$1 file=$2
  awk -v n="$count" -v size="$size" 'BEGIN {
    pad = ""; for (i = 0; i < size; i++) pad = pad "x";
    for (i = 1; i <= n; i++) { head = sprintf("{\"n\":%d,\"p\":\"", i); print head substr(pad, 1, size - length(head) - 2) "\"}" }
  }' >"$file"
}

printf '%-44s %12s %10s\n' "1M messages into nsq-broker" "msgs/s" "of ref"
for size in 100 1024; do
  make_lines $size "$dir/lines.$size"
  fresh_broker
  ref=$("$build/bench/nsq_bench" --tcp-address 127.0.0.1:$port --topic ref$size --mode pub --count "$count" --size $size |
    sed -n 's/^publish:.*: \([0-9]*\) msgs\/s$/\1/p')
  fresh_broker
  start=$(date +%s%N)
  "$build/bin/nsq-pub" -q -t pub$size --nsqd-tcp-address 127.0.0.1:$port "$dir/lines.$size"
  end=$(date +%s%N)
  rate=$(awk -v n="$count" -v ns=$((end - start)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
  printf '%-44s %12s %10s\n' "MPUB load client, $size B (reference)" "$ref" "100%"
  printf '%-44s %12s %9s%%\n' "nsq-pub from a file, $size B (JSON checked)" "$rate" \
    "$(awk -v a="$rate" -v b="$ref" 'BEGIN { printf "%.0f", 100 * a / b }')"
  fresh_broker
  start=$(date +%s%N)
  "$build/bin/nsq-pub" -q --raw -t raw$size --nsqd-tcp-address 127.0.0.1:$port "$dir/lines.$size"
  end=$(date +%s%N)
  rate=$(awk -v n="$count" -v ns=$((end - start)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
  printf '%-44s %12s %9s%%\n' "nsq-pub --raw from a file, $size B" "$rate" \
    "$(awk -v a="$rate" -v b="$ref" 'BEGIN { printf "%.0f", 100 * a / b }')"
  rm -f "$dir/lines.$size"
done
echo "goal: nsq-pub >= 80% of the load client; to_nsq ~12.6k msg/s (x20 = 252k msg/s)"
