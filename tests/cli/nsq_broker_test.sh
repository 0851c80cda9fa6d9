#!/usr/bin/env bash
# nsq-broker run as a user would: flags, exit codes, --config, HTTP and TCP up, SIGTERM exits 0.
source "$(dirname "$0")/lib.sh"

run nsq-broker --version
expect "--version" 0
case $out in "nsq-broker "*) ok ;; *) bad "--version names the program" ;; esac
run nsq-broker --help
expect "--help" 0
case $out in *--mem-queue-size*--max-rdy-count*) ok ;; *) bad "--help lists nsqd's flags" ;; esac
run nsq-broker --bogus
expect "unknown flag" 64
run nsq-broker --tcp-address nonsense
expect "malformed --tcp-address" 64
expect_err "names the flag" "--tcp-address nonsense"
run nsq-broker --msg-timeout 5parsecs
expect "bad duration" 64
run nsq-broker --config "$T/missing.toml"
expect "missing --config" 78
# Sizes are 32-bit in NSQ: a larger one is refused, not truncated for the disk queue.
run nsq-broker --max-msg-size 4294967370
expect "--max-msg-size past 32 bits" 64
expect_err "says the range" "--max-msg-size: 4294967370: want a whole number from 1 to 2147483621"
# A number past int64 is out of range (it was accepted), and 300 digits are not echoed back.
run nsq-broker --mem-queue-size 99999999999999999999
expect "--mem-queue-size past int64" 64
long=$(printf '9%.0s' $(seq 300))
for flag in --max-rdy-count --msg-timeout; do
  run nsq-broker $flag "$long"
  expect "$flag of 300 digits" 64
  case $err in *999999999999999999999999*) bad "$flag: the 300 digits are shortened" "${err:0:400}" ;; *) ok ;; esac
  expect_err "$flag: shortened" "99999999999999999999...(300 digits)"
done
printf '[nsqd]\ntcp_address = "127.0.0.1:0"\nmem_queue_size = \n' >"$T/bad.toml"
run nsq-broker --config "$T/bad.toml"
expect "a --config that is not TOML" 78
expect_err "names the file, line and reason" "nsq-broker: --config $T/bad.toml:3:"
printf 'tcp_address = "127.0.0.1:0"\nmem_queue_size = "lots"\n' >"$T/type.toml"
run nsq-broker --config "$T/type.toml"
expect "a wrong type in --config" 78
expect_err "names the file and the line of the key" "nsq-broker: --config $T/type.toml:2:"

# Start, answer over HTTP and TCP, stop on SIGTERM with 0.
tcp=$(free_port)
http=$(free_port)
cat >"$T/broker.toml" <<TOML
tcp_address = "127.0.0.1:$tcp"
http_address = "127.0.0.1:$http"
mem_queue_size = 5
TOML
nsq-broker --config "$T/broker.toml" 2>"$T/broker.log" &
pid=$!
if wait_ping "$http"; then ok; else bad "HTTP /ping answers (addresses from --config)"; fi
info=$(http_get "$http" /info)
case $info in *"\"tcp_port\":$tcp"*) ok ;; *) bad "/info names the TCP port" "$info" ;; esac
# A PUB over raw TCP answers OK: [size 6][type 0]OK.
reply=$(exec 3<>/dev/tcp/127.0.0.1/"$tcp"; printf '  V2PUB cli\n\0\0\0\5hello' >&3; timeout 2 head -c 10 <&3 | od -An -c | tr -s ' ')
case $reply in *"O K"*) ok ;; *) bad "PUB over TCP answers OK" "$reply" ;; esac
stats=$(http_get "$http" '/stats?format=json&topic=cli')
case $stats in *'"message_count":1'*) ok ;; *) bad "/stats counts the message" "$stats" ;; esac

# Another broker on the same port cannot listen: 69.
run nsq-broker --tcp-address 127.0.0.1:"$tcp" --http-address ""
expect "TCP port in use" 69

kill -TERM $pid
# Exit within a deadline; a broker that hangs on SIGTERM is a failure, not a stuck test.
deadline=$((SECONDS + 15))
while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
if kill -0 $pid 2>/dev/null; then
  bad "exits within 15 s of SIGTERM" "$(tail -5 "$T/broker.log")"
  kill -9 $pid
fi
wait $pid
status=$?
expect "SIGTERM exits 0" 0
grep -q "shutting down" "$T/broker.log" && ok || bad "logs the shutdown" "$(cat "$T/broker.log")"

# Disk full (a 256 KiB tmpfs, when this user may mount one): publishes fail with nsqd's errors,
# the broker stays up, and publishes work again once there is room.
full=$T/full
mkdir -p "$full"
if mount -t tmpfs -o size=256k tmpfs "$full" 2>/dev/null; then
  trap 'umount "$full" 2>/dev/null; rm -rf "$T"' EXIT
  tcp=$(free_port)
  http=$(free_port)
  nsq-broker --data-path "$full" --mem-queue-size 1 --tcp-address 127.0.0.1:$tcp --http-address 127.0.0.1:$http \
    2>"$T/full.log" &
  pid=$!
  wait_ping "$http" || bad "broker on a tmpfs starts"
  body=$(head -c 1000 /dev/zero | tr '\0' x)
  code=""
  for i in $(seq 1 1000); do
    r=$(exec 3<>/dev/tcp/127.0.0.1/$http; printf 'POST /pub?topic=full HTTP/1.0\r\nContent-Length: 1000\r\n\r\n%s' "$body" >&3; cat <&3)
    case $r in *"200 OK"*) ;; *) code=$r; break ;; esac
  done
  case $code in *"503"*'{"message":"EXITING"}'*) ok ;; *) bad "HTTP /pub on a full disk: 503 EXITING" "${code:0:300}" ;; esac
  reply=$(exec 3<>/dev/tcp/127.0.0.1/"$tcp"; printf '  V2PUB full\n\0\0\3\350%s' "$body" >&3; timeout 2 cat <&3 | tr -d '\0\1\2\3\4\5\6\7')
  case $reply in *"E_PUB_FAILED PUB failed"*) ok ;; *) bad "TCP PUB on a full disk: E_PUB_FAILED" "$reply" ;; esac
  [ "$(http_get "$http" /ping)" = OK ] && ok || bad "the broker stays up on a full disk"
  grep -q "No space left on device" "$T/full.log" && ok || bad "the disk error is logged"
  rm -f "$full"/full.diskqueue.*
  r=$(exec 3<>/dev/tcp/127.0.0.1/$http; printf 'POST /pub?topic=later HTTP/1.0\r\nContent-Length: 2\r\n\r\nok' >&3; cat <&3)
  case $r in *"200 OK"*) ok ;; *) bad "publishes work again once there is room" "$r" ;; esac
  kill -TERM $pid
  wait $pid
  umount "$full"
else
  echo "SKIP: disk full (cannot mount a tmpfs here)"
fi
finish
