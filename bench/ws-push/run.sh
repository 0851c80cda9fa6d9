#!/usr/bin/env bash
# ws-push: RSS per idle logged-in connection at 10k and 50k connections, fan-out messages/s to 10k
# connections (broadcast and per-user, from POST /push), p50/p99 from POST /push to receipt at
# 10k msgs/s, and RSS per idle TLS connection at 10k. Builds ws-push and the load client
# (bench/ws-push/ws_bench.cpp), starts two ws-push nodes (no Redis: single nodes; one plain, one
# with --tls-cert) with the open-file limit raised to the hard limit, and prints one table:
# each figure against its goal (design.md section 5). No other push server is at hand to measure in
# the same run: the peers' published figures close the table, marked as not measured here.
# Usage: bench/ws-push/run.sh [BUILD_DIR [ws_bench flags...]]   (heavy: run it under the build lock
# on a shared box). WS_PUSH=path measures that ws-push binary instead of BUILD_DIR's (to compare
# two builds); ws_bench flags are added last (e.g. --fanout 0 for the RSS steps only).
# Both processes need one file descriptor per connection: a step above the hard RLIMIT_NOFILE
# (`ulimit -Hn`) is replaced by the largest that fits, and the table says which limit stopped it.
set -eu
build=${1:-build}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${WS_PUSH:-}" ]; then
  cmake --build "$build" --target ws_bench >&2
else
  cmake --build "$build" --target ws-push ws_bench >&2
  WS_PUSH=$build/bin/ws-push
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/ws-bench.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"' EXIT

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard"
steps=10000 rows=()
if [ "$hard" -ge 50200 ]; then
  steps=10000,50000
else
  # Leave room for the node's listeners, the client's own files and the push API connection.
  most=$(( (hard - 200) / 1000 * 1000 ))
  [ "$most" -gt 10000 ] && steps=10000,$most
  rows+=(--row "RSS per idle logged-in connection, 50k|not run|<= 5 KiB|RLIMIT_NOFILE hard limit $hard per process (raising it needs CAP_SYS_RESOURCE)")
fi

rows+=(--row "reference: gobwas/ws per idle connection|~8 KB|published, not measured here|"
  --row "reference: goim per idle connection|~14 KB|published, not measured here|"
  --row "reference: Centrifugo per idle connection|11-27 KB|published, not measured here|")

head -c 32 /dev/urandom | base64 -w0 >"$dir/secret"  # HS256 wants at least 32 bytes
# The TLS node's certificate: self-signed, P-256 (the client does not verify it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

# start NAME [ws-push flags...]: a node on free ports; sets NAME_pid, NAME_port, NAME_push_port.
start() {
  local name=$1 log=$dir/$1.log p
  shift
  "$WS_PUSH" --listen 127.0.0.1:0 --push-listen 127.0.0.1:0 --jwt-secret-file "$dir/secret" \
    --max-connections 1000000 "$@" 2>"$log" &
  p=$!
  pids+=("$p")
  for _ in $(seq 500); do
    grep -q 'push API: listening on' "$log" && break
    kill -0 "$p" 2>/dev/null || { cat "$log" >&2; exit 69; }
    sleep 0.01
  done
  printf -v "${name}_pid" %s "$p"
  printf -v "${name}_port" %s "$(sed -n 's/.*WebSocket: listening on [0-9.]*:\([0-9]*\)\/.*/\1/p' "$log")"
  printf -v "${name}_push_port" %s "$(sed -n 's/.*push API: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log")"
}
start plain
start tls --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
[ -n "$plain_port" ] && [ -n "$plain_push_port" ] && [ -n "$tls_port" ] || { cat "$dir"/*.log >&2; exit 69; }

echo "$WS_PUSH ($("$WS_PUSH" --version | head -1)), $(nproc) cores, loopback," \
  "open-file limit $hard; $(date -u +%FT%TZ)"
"$build/bench/ws_bench" --port "$plain_port" --push-port "$plain_push_port" --secret-file "$dir/secret" \
  --pid "$plain_pid" --tls-port "$tls_port" --tls-pid "$tls_pid" --steps "$steps" --sources 4 \
  --fanout-conns 10000 --rate 10000 --duration 5 "${rows[@]}" "$@"
for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
pids=()
for log in "$dir"/plain.log "$dir"/tls.log; do
  if grep -qv -e 'listening on' -e 'signal 15' -e 'stopped' -e 'draining' "$log"; then
    echo "ws-push log of $(basename "$log" .log) node (other than start and stop):"
    grep -v -e 'listening on' -e 'signal 15' -e 'stopped' -e 'draining' "$log" | head -20
  fi
done
