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
