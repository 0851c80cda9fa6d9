#!/usr/bin/env bash
# Each program loads only the shared libraries it must, since every one costs start-up time (the
# goal: --version in <= 2 ms; bench/ethcall/run.sh prints the figures). With PIPEKIT_STATIC_DEPS
# (the default; cmake/PipekitStaticDeps.cmake) a program loads glibc alone: no BIND_NOW library
# (Debian's libcrypto, libssl, libhiredis bind all their symbols before main), no shared C++
# runtime; nsq-pub keeps libsimdjson (Debian ships no libsimdjson.a) and with it libstdc++.
# With it OFF: hiredis only where Redis is spoken (ws-push, push-route), TLS not in lookupd.
# Under both: libcurl nowhere (net::http_session is the HTTP client), toml++ compiled in.
source "$(dirname "$0")/lib.sh"
out="" err=""
command -v readelf >/dev/null || { echo "linkage_test: no readelf"; exit 1; }
needed() { readelf -d "$PIPEKIT_BIN/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
has() { needed "$1" | grep -q "^$2"; }
lacks() { ! has "$@"; }
# only PROGRAM LIB...: every shared library PROGRAM names is one of LIB... (prefixes).
only() {
  local p=$1 lib allowed ok_lib
  shift
  for lib in $(needed "$p"); do
    ok_lib=no
    for allowed in "$@"; do [[ $lib == "$allowed"* ]] && ok_lib=yes; done
    [ $ok_lib = yes ] || { echo "  $p loads $lib"; return 1; }
  done
}
# bind_now_libs PROGRAM: the libraries the program loads (ldd: with their own dependencies) that
# are built with BIND_NOW.
bind_now_libs() {
  local path
  for path in $(ldd "$PIPEKIT_BIN/$1" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
    if readelf -d "$path" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW'; then echo "$path"; fi
  done
}
glibc=(libc.so libm.so ld-linux)
programs=(ethcall lookupd nsq-broker nsq-pub nsq-tail ws-push push-route abigen-cpp)
for p in "${programs[@]}"; do
  check "$p is built" test -x "$PIPEKIT_BIN/$p"
  check "$p does not load libcurl" lacks "$p" libcurl
  check "$p does not load libtomlplusplus" lacks "$p" libtomlplusplus
  if [ "${PIPEKIT_STATIC_DEPS:-ON}" = ON ]; then
    case $p in
      nsq-pub)
        check "$p loads glibc, libsimdjson and the C++ runtime only" only "$p" "${glibc[@]}" libsimdjson libstdc++ libgcc_s
        run bind_now_libs "$p"
        expect "$p loads no BIND_NOW library but libsimdjson" 0 "$(ldd "$PIPEKIT_BIN/$p" | sed -n 's/.*=> \(\/[^ ]*libsimdjson[^ ]*\) .*/\1/p')" ;;
      *)
        check "$p loads glibc only" only "$p" "${glibc[@]}"
        run bind_now_libs "$p"
        expect "$p loads no BIND_NOW library" 0 "" ;;
    esac
  else
    case $p in
      ws-push|push-route) check "$p loads hiredis" has "$p" libhiredis ;;
      *) check "$p does not load hiredis" lacks "$p" libhiredis ;;
    esac
  fi
done
check "lookupd loads no TLS library" lacks lookupd libssl
finish
