#!/usr/bin/env bash
# nsq-pub throughput: 1,000,000 lines from a file (100 B and 1 KiB JSON lines) into nsq-broker,
# against the broker's own MPUB load client in the same run (bench/nsq-broker/nsq_bench: MPUB
# batches of 200 over 2 connections). Goal (issue 5): nsq-pub >= 80% of it; to_nsq does ~12.6k msg/s.
# Usage: bench/nsq-pub/run.sh BUILD_DIR [COUNT [REPEAT]]   (needs nsq-broker, nsq-pub and nsq_bench built)
# Each figure is the median of REPEAT runs (default 5), each on a fresh broker.
set -eu
build=${1:-build}
count=${2:-1000000}
repeat=${3:-5}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pipekit-bench-pub.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
# Every measurement gets a fresh broker: one that already holds the previous run's messages
# (1 GB at 1 KiB) would make later runs pay for its growth.
fresh_broker() {
  [ -n "$pid" ] && { kill $pid; wait $pid 2>/dev/null || true; }
  port=$((20000 + RANDOM % 20000))
  "$build/bin/nsq-broker" -q --tcp-address 127.0.0.1:$port --http-address "" --mem-queue-size 100000000 >/dev/null &
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

# One rate each (in $rate, msgs/s), on a fresh broker; runs alternate so drift hits all three
# alike. Not in $(...): the broker started there would hold the substitution's pipe open.
ref_rate() {
  fresh_broker
  rate=$("$build/bench/nsq_bench" --tcp-address 127.0.0.1:$port --topic ref --mode pub --count "$count" --size "$1" |
    sed -n 's/^publish:.*: \([0-9]*\) msgs\/s$/\1/p')
}
pub_rate() {  # pub_rate FILE [nsq-pub flags]
  local file=$1 start end
  shift
  fresh_broker
  start=$(date +%s%N)
  "$build/bin/nsq-pub" -q -t pub --nsqd-tcp-address 127.0.0.1:$port "$@" "$file"
  end=$(date +%s%N)
  rate=$(awk -v n="$count" -v ns=$((end - start)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }

printf '%-44s %12s %10s   (median of %d runs)\n' "$count messages into nsq-broker" "msgs/s" "of ref" "$repeat"
for size in 100 1024; do
  make_lines $size "$dir/lines.$size"
  refs=() jsons=() raws=()
  for _ in $(seq "$repeat"); do
    ref_rate $size && refs+=("$rate")
    pub_rate "$dir/lines.$size" && jsons+=("$rate")
    pub_rate "$dir/lines.$size" --raw && raws+=("$rate")
  done
  ref=$(median "${refs[@]}") json=$(median "${jsons[@]}") raw=$(median "${raws[@]}")
  printf '%-44s %12s %10s   %s\n' "MPUB load client, $size B (reference)" "$ref" "100%" "${refs[*]}"
  printf '%-44s %12s %9s%%   %s\n' "nsq-pub from a file, $size B (JSON checked)" "$json" "$(pct "$json" "$ref")" "${jsons[*]}"
  printf '%-44s %12s %9s%%   %s\n' "nsq-pub --raw from a file, $size B" "$raw" "$(pct "$raw" "$ref")" "${raws[*]}"
  rm -f "$dir/lines.$size"
done
echo "goal: nsq-pub >= 80% of the load client; to_nsq ~12.6k msg/s (x20 = 252k msg/s)"
