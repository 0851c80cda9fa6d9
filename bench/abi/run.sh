#!/usr/bin/env bash
# ABI encode+decode: pipekit::eth (abi_bench) against ethers v6, on the same corpus, in one run.
#
#   bench/abi/run.sh BUILD_DIR/bench/abi_bench [--seconds 3] [--count 2000] [--seed 7]
#
# Builds nothing: pass the abi_bench binary (cmake --build BUILD_DIR --target abi_bench).
# Needs node and `npm ci` done in tests/ (ethers). Goal (design.md section 5): ratio >= 10.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { echo "usage: $0 PATH/TO/abi_bench [--seconds S] [--count N] [--seed N]" >&2; exit 64; }

[[ $# -ge 1 ]] || usage
bench_bin="$1"; shift
seconds=3 count=2000 seed=7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?}"; shift 2 ;;
    --count) count="${2:?}"; shift 2 ;;
    --seed) seed="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
[[ -x "$bench_bin" ]] || { echo "$0: $bench_bin: not an executable (build the abi_bench target)" >&2; exit 66; }

work="$(mktemp -d "${TMPDIR:-/tmp}/abi-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
corpus="$work/corpus.jsonl"
node "$here/gen_corpus.mjs" --count "$count" --seed "$seed" --out "$corpus"

echo "corpus: $count cases (seed $seed), ${seconds}s per contender, $(nproc) cores"
node "$here/abi_ethers.mjs" "$corpus" --seconds "$seconds" | tee "$work/ethers.txt"
"$bench_bin" "$corpus" "$seconds" | tee "$work/pipekit.txt"

ops() { awk '$1 == "ops_per_sec" { print $2 }' "$1"; }
ethers_ops="$(ops "$work/ethers.txt")"
pipekit_ops="$(ops "$work/pipekit.txt")"
[[ -n "$ethers_ops" && -n "$pipekit_ops" ]] || { echo "$0: a contender printed no ops_per_sec" >&2; exit 70; }

awk -v e="$ethers_ops" -v p="$pipekit_ops" 'BEGIN {
  ratio = p / e
  printf "\n%-34s %16s %10s\n", "ABI encode+decode (same corpus)", "ops/s", "ratio"
  printf "%-34s %16s %10s\n", "----------------------------------", "----------------", "----------"
  printf "%-34s %16.0f %10s\n", "ethers v6 (reference)", e, "1.0x"
  printf "%-34s %16.0f %9.1fx\n", "pipekit::eth", p, ratio
  printf "goal >= 10x: %s\n", (ratio >= 10 ? "met" : "NOT met")
}'
