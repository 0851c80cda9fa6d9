#!/usr/bin/env bash
# nsq-broker (and lookupd) against hostile clients and exhausted resources: out of descriptors,
# clients that never read, that write slowly, that send a deflate bomb, that put control bytes in
# names. Each case says what the daemon must hold to.
source "$(dirname "$0")/lib.sh"
client="node $PIPEKIT_SRC/tests/cli/nsq_hostile_client.mjs"

# rss_kb PID: the process's resident set in KiB.
rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }
# log_lines FILE: how many lines FILE has.
log_lines() { wc -l <"$1" | tr -d ' '; }

# --- listen addresses: one parser, one exit code ------------------------------------------------
for prog in nsq-broker lookupd; do
  run $prog --tcp-address nonsense --http-address 127.0.0.1:0
  expect "$prog: a malformed listen address is a usage error" 64
  expect_err "$prog: the message names the flag" "--tcp-address nonsense"
  run $prog --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:99999
  expect "$prog: a port out of range is a usage error" 64
done
# localhost:0 is accepted (the kernel picks the port).
nsq-broker --tcp-address localhost:0 --http-address localhost:0 2>"$T/localhost.log" &
lpid=$!
daemon_pids+=($lpid)
if wait_for 20 grep -qs "HTTP: listening on 127.0.0.1:" "$T/localhost.log"; then ok; else
  bad "nsq-broker listens on localhost:0" "$(cat "$T/localhost.log")"
fi
kill $lpid

# --- out of file descriptors: accepting pauses, the log stays small, service resumes ---------------
port=$(free_port) hport=$(free_port)
prlimit --nofile=40 nsq-broker --tcp-address 127.0.0.1:$port --http-address 127.0.0.1:$hport --max-connections 0 \
  2>"$T/emfile.log" &
epid=$!
daemon_pids+=($epid)
wait_ping $hport || bad "the broker under --nofile=40 answers /ping"
fds=()
for i in $(seq 60); do exec {fd}<>/dev/tcp/127.0.0.1/$port && fds+=($fd); done
if wait_for 10 grep -q "Too many open files" "$T/emfile.log"; then ok; else
  bad "60 connections under --nofile=40 run the broker out of descriptors" "$(tail -5 "$T/emfile.log")"
fi
before=$(log_lines "$T/emfile.log")
sleep 2  # the window measured, not a synchronisation
after=$(log_lines "$T/emfile.log")
check "out of descriptors for 2 s: at most 4 log lines ($((after - before)))" test $((after - before)) -le 4
for fd in "${fds[@]}"; do exec {fd}>&-; done
if wait_ping $hport; then ok; else bad "/ping answers once the connections are closed" "$(tail -5 "$T/emfile.log")"; fi
if wait_for 10 grep -q "accepting again" "$T/emfile.log"; then ok; else
  bad "the broker logs that it accepts again" "$(tail -5 "$T/emfile.log")"
fi
kill $epid

# --- a client that pipelines commands and never reads ---------------------------------------------
# Each bad FIN is answered with an error frame; past 1 MiB of answers not taken the broker stops
# reading that client, and past the write deadline (the heartbeat interval, 1 s here) closes it.
DAEMON_LOG_FLAG="" start_broker b
rss0=$(rss_kb $b_pid)
$client flood $b_tcp 1000 >"$T/flood.out" &
flood_pid=$!
daemon_pids+=($flood_pid)
max_rss=$rss0
deadline=$((SECONDS + 25))
while kill -0 $flood_pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do
  r=$(rss_kb $b_pid)
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  sleep 0.1
done
reply=$($client pub $b_tcp other)
case $reply in "OK "*) ok ;; *) bad "a second client's PUB is answered while the flood runs" "$reply" ;; esac
wait $flood_pid
flood=$(cat "$T/flood.out")
case $flood in "closed "*) ok ;; *) bad "the client that never reads is closed" "$flood" ;; esac
echo "flood: rss ${rss0} -> ${max_rss} KiB"; check "RSS stays bounded under the flood (${rss0} -> max ${max_rss} KiB)" test $((max_rss - rss0)) -lt 51200
grep -q "did not read its output" "$T/b.log" && ok || bad "the close is logged" "$(tail -3 "$T/b.log")"

# --- slow writers: a whole command is bounded by 2 x heartbeat interval ------------------------------
# A PUB body fed one byte per 300 ms, heartbeat 1 s: closed about 2 s after the command began
# (the old stall timer restarted on every byte: open for the whole 30 s it takes).
slow=$($client slow $b_tcp 1000 300)
case $slow in
  "closed "*) check "a trickled PUB is cut within 4 s (${slow#closed } ms)" test "${slow#closed }" -lt 4000 ;;
  *) bad "a trickled PUB is cut" "$slow" ;;
esac
grep -q "a command not complete within 2000 ms" "$T/b.log" && ok || bad "the stall is logged" "$(tail -3 "$T/b.log")"

# --- --max-connections: one more client is refused with a frame it can read ----------------------
start_broker m --max-connections 2
exec {h1}<>/dev/tcp/127.0.0.1/$m_tcp
exec {h2}<>/dev/tcp/127.0.0.1/$m_tcp  # accepted in order: these two before the next
first=$($client first $m_tcp)
case $first in "E_TOO_MANY_CONNECTIONS"*) ok ;; *) bad "the third client reads E_TOO_MANY_CONNECTIONS" "$first" ;; esac
exec {h1}>&-
served() { first=$($client first $m_tcp); [ "$first" = "<timeout>" ]; }
if wait_for 10 served; then ok; else bad "once one left, a client is served" "$first"; fi
exec {h2}>&-

# --- a deflate bomb: ~60 KiB on the wire that inflate to 60 MiB of NOPs, from two clients --------
# Decoded a bounded part per turn of the event loop (the old broker held it all at once: 27-50 MB
# per connection, the loop stalled for seconds); other clients are served meanwhile.
mkfifo "$T/hold"
$client bomb $b_tcp 60 <"$T/hold" >"$T/bomb1.out" &
bomb1=$!
$client bomb $b_tcp 60 <"$T/hold" >"$T/bomb2.out" &
bomb2=$!
daemon_pids+=($bomb1 $bomb2)
exec {hold}>"$T/hold"
rss0=$(rss_kb $b_pid)
wait_for 10 grep -q sent "$T/bomb1.out" && wait_for 10 grep -q sent "$T/bomb2.out" ||
  bad "the bombs are sent" "$(cat "$T/bomb1.out" "$T/bomb2.out")"
max_rss=$rss0
for _ in $(seq 30); do  # samples over ~3 s while the NOPs are worked through (a measurement)
  r=$(rss_kb $b_pid)
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  sleep 0.1
done
reply=$($client pub $b_tcp bombed)
case $reply in "OK "*) ok ;; *) bad "a PUB is answered while two bombs are decoded" "$reply" ;; esac
echo "deflate bomb x2: rss ${rss0} -> ${max_rss} KiB, PUB answered in ${reply#OK }"
check "RSS stays bounded under two deflate bombs (${rss0} -> max ${max_rss} KiB)" test $((max_rss - rss0)) -lt 16384
exec {hold}>&-
wait $bomb1 $bomb2

# --- client bytes in the log are escaped (ESC, CR: a fake colour and a fake line) ---------------
esc=$(printf '\033')
exec {e}<>/dev/tcp/127.0.0.1/$b_tcp
printf '  V2\033[31mEVIL\rnsq-broker: forged line\n' >&$e
wait_for 10 grep -q "EVIL" "$T/b.log" || bad "the invalid command is logged" "$(tail -3 "$T/b.log")"
exec {e}>&-
line=$(grep "EVIL" "$T/b.log")
case $line in *'\x1b[31mEVIL\rnsq-broker:'*) ok ;; *) bad "nsq-broker's log shows ESC and CR escaped" "$line" ;; esac
case $line in *"$esc"*|*$'\r'*) bad "no raw ESC or CR in nsq-broker's log" "$line" ;; *) ok ;; esac
DAEMON_LOG_FLAG="" start_daemon l lookupd
node "$PIPEKIT_SRC/tests/cli/lookupd_tcp_client.mjs" $l_tcp >"$T/l.out" <<'IN'
magic
identify {"broadcast_address":"h","tcp_port":1,"http_port":2,"version":"v"}
raw "REGISTER \u001b[31mEVIL\rlookupd: forged\n"
read
close
IN
wait_for 10 grep -q "EVIL" "$T/l.log" || bad "lookupd logs the bad topic" "$(tail -3 "$T/l.log")"
line=$(grep "EVIL" "$T/l.log")
case $line in *'\x1b[31mEVIL\rlookupd:'*) ok ;; *) bad "lookupd's log shows ESC and CR escaped" "$line" ;; esac
case $line in *"$esc"*|*$'\r'*) bad "no raw ESC or CR in lookupd's log" "$line" ;; *) ok ;; esac

finish
