#!/usr/bin/env bash
# Discovery end to end with pipekit's own daemons: nsq-broker registers with lookupd, nsq-tail finds
# brokers through two lookupds (which do not talk to each other) and merges their answers, and a
# broker that appears later is picked up within the poll interval.
source "$(dirname "$0")/lib.sh"

# producers HTTP TOPIC: how many brokers lookupd lists for TOPIC (0 for TOPIC_NOT_FOUND).
producers() {
  http_get "$1" "/lookup?topic=$2" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { console.log((JSON.parse(s).producers || []).length); } catch { console.log(0); }
    });'
}
has_producers() { [ "$(producers "$1" "$2")" -ge "$3" ]; }
# publish TCP FROM TO: lines {"m":i} for i in FROM..TO to topic "disc".
publish() { seq "$2" "$3" | sed 's/.*/{"m":&}/' | nsq-pub -q -t disc --nsqd-tcp-address 127.0.0.1:$1; }

start_daemon l1 lookupd
start_daemon l2 lookupd
# Each of the first two brokers registers with one lookupd only: only a merge finds both.
start_daemon b1 nsq-broker --lookupd-tcp-address 127.0.0.1:$l1_tcp
start_daemon b2 nsq-broker --lookupd-tcp-address 127.0.0.1:$l2_tcp
publish $b1_tcp 1 100 && ok || bad "publish to broker 1"
publish $b2_tcp 101 200 && ok || bad "publish to broker 2"
check "lookupd 1 lists broker 1 for the topic" wait_for 20 has_producers $l1_http disc 1
check "lookupd 2 lists broker 2 for the topic" wait_for 20 has_producers $l2_http disc 1

nsq-tail -q -t disc -c archive --lookupd-http-address 127.0.0.1:$l1_http --lookupd-http-address 127.0.0.1:$l2_http \
  --lookupd-poll-interval 500ms -n 300 >"$T/out" 2>"$T/tail.err" &
tail_pid=$!
daemon_pids+=($tail_pid)
check "the first 200 arrive from both brokers" wait_for 20 sh -c "[ \$(wc -l <'$T/out') -ge 200 ]"

# A third broker, registered with both lookupds, after nsq-tail started.
start_daemon b3 nsq-broker --lookupd-tcp-address 127.0.0.1:$l1_tcp --lookupd-tcp-address 127.0.0.1:$l2_tcp
publish $b3_tcp 201 300 && ok || bad "publish to broker 3"
check "lookupds list all three brokers" wait_for 20 has_producers $l1_http disc 2
if wait_for 20 sh -c "! kill -0 $tail_pid 2>/dev/null"; then ok; else bad "nsq-tail -n 300 ends once the new broker's messages arrive" "$(cat "$T/tail.err")"; fi
wait $tail_pid
status=$?
expect "nsq-tail exits 0 after -n 300" 0
if [ "$(sort -u "$T/out")" = "$(seq 1 300 | sed 's/.*/{"m":&}/' | sort -u)" ] && [ "$(wc -l <"$T/out")" -eq 300 ]; then ok; else
  bad "all 300 messages, each once" "$(wc -l <"$T/out") lines"
fi

# A broker that stops is gone from lookupd at once, and so is a topic no live broker has.
node_listed() { http_get "$1" /nodes | grep -q "\"tcp_port\":$2"; }
topic_listed() { http_get "$1" /topics | grep -q "\"$2\""; }
check "lookupd 2 lists broker 3 while it runs" node_listed $l2_http $b3_tcp
kill -TERM $b3_pid
check "a stopped broker leaves lookupd" wait_for 20 eval "! node_listed $l2_http $b3_tcp"
check "lookupd 2 still lists the topic: broker 2 has it" topic_listed $l2_http disc
kill -TERM $b2_pid
check "then no longer lists the topic" wait_for 20 eval "! topic_listed $l2_http disc"
finish
