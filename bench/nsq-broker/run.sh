#!/usr/bin/env bash
# nsq-broker throughput and latency: MPUB batches of 200 over 2 connections, consumers with RDY 2500
# over 2 connections; 100-byte and 1 KiB messages; publish alone, consume the backlog, then both at
# once. Twice: overflow in memory (no --data-path), and overflow to disk (--data-path, as nsqd runs).
# Then --durable against the same broker without it: publish 1M 100-byte messages (MPUB of 200)
# over 2 and over 8 connections to each, one MPUB in flight per connection (as nsq's bench_writer)
# and 8 (as nsq-pub), and the ratio (goal: durable >= 50% of non-durable).
# Prints msgs/s, p50/p99 publish-to-deliver latency and the broker's RSS.
# Usage: bench/nsq-broker/run.sh BUILD_DIR   (needs the nsq-broker and nsq_bench targets built)
# Reference (issue 4, nsqd v1.3.0 on this machine kind): ~420k msg/s publish, ~340k msg/s consume,
# ~377k/s each when concurrent, 100-byte messages; ~16 MB RSS with 1M messages on disk.
set -eu
build=${1:-build}
data=$(mktemp -d "${TMPDIR:-/tmp}/nsq-bench.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for mode in memory disk; do
  port=$((20000 + RANDOM % 20000))
  extra=()
  [ $mode = disk ] && extra=(--data-path "$data")
  "$build/bin/nsq-broker" -q --tcp-address 127.0.0.1:$port --http-address "" "${extra[@]}" &
  pid=$!
  sleep 0.3
  b() { "$build/bench/nsq_bench" --tcp-address 127.0.0.1:$port --pid $pid "$@"; }
  echo "==== overflow in $mode"
  echo "== 100 B: publish 1M (no consumer), then consume the backlog"
  b --topic t100 --mode pub --count 1000000 --size 100
  b --topic t100 --mode sub --count 1000000
  echo "== 100 B: publish and consume 2M concurrently"
  b --topic c100 --mode both --count 2000000 --size 100
  echo "== 1 KiB: publish and consume 500k concurrently"
  b --topic c1k --mode both --count 500000 --size 1024
  kill $pid
  wait $pid 2>/dev/null || true
  pid=
done

# --durable vs not: the same publish load against a fresh broker each, same --data-path kind.
pub_rate() {  # pub_rate CONNS PIPELINE BROKER-ARGS...: msgs/s of 1M 100-byte publishes
  local conns=$1 pipeline=$2 port=$((20000 + RANDOM % 20000)) dir
  shift 2
  dir=$(mktemp -d "$data/run.XXXXXX")
  "$build/bin/nsq-broker" -q --tcp-address 127.0.0.1:$port --http-address "" --data-path "$dir" "$@" &
  pid=$!
  sleep 0.3
  "$build/bench/nsq_bench" --tcp-address 127.0.0.1:$port --topic d --mode pub --count 1000000 --size 100 \
    --pub-conns "$conns" --pipeline "$pipeline" | sed -n 's/^publish: .*: \([0-9]*\) msgs\/s$/\1/p'
  kill $pid
  wait $pid 2>/dev/null || true
  pid=
  rm -rf "$dir"
}
echo "==== --durable vs non-durable publish (100 B, MPUB 200, --data-path for both)"
# What one fdatasync costs on this disk now: the durable rate of a client that waits for each OK is
# bound by it (one group commit per sync), so the ratio is only comparable alongside this figure.
dd if=/dev/zero of="$data/dsync" bs=4k count=500 oflag=dsync 2>&1 |
  awk '/copied/ {printf "disk: %.2f ms per 4 KiB O_DSYNC write (dd)\n", $(NF-3) * 1000 / 500}'
rm -f "$data/dsync"
for conns in 2 8; do
  for pipeline in 1 8; do
    plain=$(pub_rate $conns $pipeline)
    durable=$(pub_rate $conns $pipeline --durable)
    echo "$conns connections, $pipeline MPUB in flight each: non-durable $plain msgs/s, durable $durable msgs/s," \
      "ratio $(awk "BEGIN{printf \"%.2f\", $durable/$plain}")"
  done
done
