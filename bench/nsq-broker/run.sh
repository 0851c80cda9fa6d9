#!/usr/bin/env bash
# nsq-broker throughput and latency: MPUB batches of 200 over 2 connections, consumers with RDY 2500
# over 2 connections; 100-byte and 1 KiB messages; publish alone, consume the backlog, then both at
# once. Twice: overflow in memory (no --data-path), and overflow to disk (--data-path, as nsqd runs).
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
