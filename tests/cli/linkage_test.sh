#!/usr/bin/env bash
# Each program loads only the shared libraries it uses, since every one costs start-up time (the
# goal: --version in <= 2 ms): hiredis only where Redis is spoken (ws-push, push-route), libcurl
# nowhere (net::http_session is the HTTP client), toml++ compiled in (no libtomlplusplus).
source "$(dirname "$0")/lib.sh"
out="" err=""
command -v readelf >/dev/null || { echo "linkage_test: no readelf"; exit 1; }
needed() { readelf -d "$PIPEKIT_BIN/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
has() { needed "$1" | grep -q "^$2"; }
lacks() { ! has "$@"; }
programs=(ethcall lookupd nsq-broker nsq-pub nsq-tail ws-push push-route)
for p in "${programs[@]}"; do
  check "$p is built" test -x "$PIPEKIT_BIN/$p"
  check "$p does not load libcurl" lacks "$p" libcurl
  check "$p does not load libtomlplusplus" lacks "$p" libtomlplusplus
  case $p in
    ws-push|push-route) check "$p loads hiredis" has "$p" libhiredis ;;
    *) check "$p does not load hiredis" lacks "$p" libhiredis ;;
  esac
done
check "lookupd loads no TLS library" lacks lookupd libssl
finish
