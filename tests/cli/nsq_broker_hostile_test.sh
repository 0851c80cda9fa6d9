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
prlimit --nofile=40 nsq-broker --tcp-address 127.0.0.1:$port --http-address 127.0.0.1:$hport 2>"$T/emfile.log" &
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

finish
