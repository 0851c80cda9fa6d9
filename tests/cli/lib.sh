# Shared by tests/cli/*_test.sh: run the real binaries, compare, count, clean up.
# Environment (set by ctest): PIPEKIT_BIN (programs), PIPEKIT_SRC (source tree).
set -u
PIPEKIT_SRC=${PIPEKIT_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PIPEKIT_BIN=${PIPEKIT_BIN:-$PIPEKIT_SRC/build/bin}
PATH=$PIPEKIT_BIN:$PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/pipekit-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0 failed=0

# run CMD...: sets $out, $err, $status (stdout, stderr, exit code) without stopping the script.
run() {
  "$@" >"$T/out" 2>"$T/err" </dev/null
  status=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
# run_in INPUT CMD...: the same with INPUT on stdin (exactly as given: no newline added).
run_in() {
  local input=$1
  shift
  printf '%s' "$input" | "$@" >"$T/out" 2>"$T/err"
  status=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}

ok() { passed=$((passed + 1)); }
bad() {
  failed=$((failed + 1))
  echo "FAIL: $1"
  [ -n "${2:-}" ] && printf '  %s\n' "$2"
  printf '  status: %s\n  stdout: %s\n  stderr: %s\n' "${status:-}" "${out:0:600}" "${err:0:600}"
}
# expect NAME STATUS [STDOUT]: the last run's status (and stdout, when given) are exactly these.
expect() {
  local name=$1 want_status=$2
  if [ "$status" != "$want_status" ]; then bad "$name" "want status $want_status"; return; fi
  if [ $# -ge 3 ] && [ "$out" != "$3" ]; then bad "$name" "want stdout: $3"; return; fi
  ok
}
# expect_err NAME TEXT: the last run's stderr contains TEXT.
expect_err() {
  case $err in *"$2"*) ok ;; *) bad "$1" "want stderr containing: $2" ;; esac
}
# check NAME CONDITION-COMMAND...
check() {
  local name=$1
  shift
  if "$@"; then ok; else bad "$name" "condition failed: $*"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# free_port: a free 127.0.0.1 TCP port (the kernel's pick, released at once).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_anvil [ANVIL-ARGS...]: starts anvil (npm, tests/node_modules) on a free port in $T and
# waits, with a deadline, until it answers eth_chainId. Sets ANVIL_URL and ANVIL_PID; the EXIT
# trap stops it. Extra arguments go to anvil (e.g. --ipc PATH).
start_anvil() {
  local anvil=${PIPEKIT_TEST_NODE_MODULES:-$PIPEKIT_SRC/tests/node_modules}/.bin/anvil try port deadline
  for try in 1 2 3; do
    port=$(free_port)
    "$anvil" --host 127.0.0.1 --port "$port" --silent "$@" >"$T/anvil.log" 2>&1 &
    ANVIL_PID=$!
    trap 'kill $ANVIL_PID 2>/dev/null; wait $ANVIL_PID 2>/dev/null; rm -rf "$T"' EXIT
    ANVIL_URL=http://127.0.0.1:$port
    deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 $ANVIL_PID 2>/dev/null; do
      ethcall chain-id --rpc-url "$ANVIL_URL" --rpc-timeout 1s >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    kill $ANVIL_PID 2>/dev/null
    wait $ANVIL_PID 2>/dev/null
  done
  echo "FAIL: anvil did not answer eth_chainId within 60 s (3 tries); its log:"
  tail -20 "$T/anvil.log"
  exit 1
}

# anvil's first dev account (its default mnemonic): address, private key, and write_dev_key, which
# puts the key in $T/key (mode 600) for --private-key-file.
DEV0=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
KEY0=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
write_dev_key() {
  printf '0x%s\n' "$KEY0" >"$T/key"
  chmod 600 "$T/key"
}

# freeze PID: SIGSTOP, then wait (with a deadline) until every thread of it has stopped: kill
# returns before the threads of a busy process are all stopped, and one may still answer.
freeze() {
  local pid=$1 deadline=$((SECONDS + 10)) t running
  kill -STOP "$pid"
  while [ $SECONDS -lt $deadline ]; do
    running=0
    for t in /proc/"$pid"/task/*/stat; do
      case $(sed 's/.*) //' "$t" 2>/dev/null) in T*) ;; *) running=1 ;; esac
    done
    [ $running -eq 0 ] && return 0
    sleep 0.01
  done
  echo "FAIL: process $pid did not stop within 10 s of SIGSTOP"
  return 1
}

# --- NSQ peers (nsq-broker, lookupd) ---------------------------------------------------------

# http_get PORT PATH: the body of a GET to 127.0.0.1:PORT (bash's /dev/tcp, no curl needed).
http_get() {
  exec 3<>/dev/tcp/127.0.0.1/"$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
# http_post PORT PATH: POST with an empty body; prints the response body.
http_post() {
  exec 3<>/dev/tcp/127.0.0.1/"$1" || return 1
  printf 'POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
# wait_for SECONDS CMD...: until CMD succeeds; false when the deadline passes.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}
# wait_ping PORT: until GET /ping on PORT answers OK (deadline 30 s).
wait_ping() { wait_for 30 eval '[ "$(http_get '"$1"' /ping 2>/dev/null)" = OK ]'; }
# Background daemons started by start_daemon, killed by the EXIT trap.
daemon_pids=()
trap 'for p in "${daemon_pids[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$T"' EXIT
# start_daemon NAME PROGRAM [FLAGS...]: PROGRAM --tcp-address/--http-address on free ports (the
# TCP port FIXED_TCP when set, to restart a daemon where its clients expect it), then waits (30 s)
# until its /ping answers. Sets ${NAME}_tcp, ${NAME}_http and ${NAME}_pid. It runs with -q unless
# DAEMON_LOG_FLAG says otherwise ("" for the default log level).
start_daemon() {
  local name=$1 program=$2 tcp http pid
  shift 2
  tcp=${FIXED_TCP:-$(free_port)}
  http=$(free_port)
  while [ "$http" = "$tcp" ]; do http=$(free_port); done
  "$program" --tcp-address 127.0.0.1:$tcp --http-address 127.0.0.1:$http ${DAEMON_LOG_FLAG--q} "$@" 2>>"$T/$name.log" &
  pid=$!
  daemon_pids+=($pid)
  if ! wait_for 30 eval '[ "$(http_get '$http' /ping 2>/dev/null)" = OK ] || ! kill -0 '$pid' 2>/dev/null' ||
    ! kill -0 $pid 2>/dev/null; then
    echo "FAIL: $program ($name) did not answer /ping within 30 s; its log:"
    cat "$T/$name.log"
    exit 1
  fi
  printf -v "${name}_tcp" %s "$tcp"
  printf -v "${name}_http" %s "$http"
  printf -v "${name}_pid" %s "$pid"
}
# start_broker NAME [FLAGS...]: start_daemon NAME nsq-broker FLAGS...
start_broker() {
  local name=$1
  shift
  start_daemon "$name" nsq-broker "$@"
}

# make_tls_certs DIR: with the openssl CLI, a CA (ca.pem), a server certificate it signs for
# 127.0.0.1 and localhost (server.pem, server.key), a client certificate (client.pem,
# client.key), one the CA signs for another host only (wronghost.pem, wronghost.key), and a
# second, unrelated CA (other-ca.pem) to verify against and fail.
make_tls_certs() {
  local d=$1 n
  mkdir -p "$d"
  (
    cd "$d" || exit 1
    for n in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pipekit test $n" \
        -keyout $n.key -out $n.pem 2>/dev/null || exit 1
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    printf 'subjectAltName=DNS:elsewhere.invalid\nextendedKeyUsage=serverAuth\n' >wronghost.ext
    for n in server client wronghost; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=pipekit test $n" -keyout $n.key -out $n.csr 2>/dev/null &&
        openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile $n.ext \
          -out $n.pem 2>/dev/null || exit 1
    done
  )
}
