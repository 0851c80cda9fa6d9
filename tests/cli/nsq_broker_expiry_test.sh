#!/usr/bin/env bash
# nsq-broker beyond nsqd, as a user runs it: a fresh #ephemeral channel (nsq-tail's default) gets a
# topic's whole backlog (--ephemeral-overflow hold), or drops counted (drop); --msg-ttl drops old
# messages unsent and counts them, per topic, and with --durable they stay done with after a kill -9.
source "$(dirname "$0")/lib.sh"

# stat PORT TOPIC FIELD [CHANNEL]: one number from /stats?format=json (the topic's, or the channel's).
stat() {
  http_get "$1" "/stats?format=json&topic=$2" 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      try { const t = JSON.parse(s).topics[0]; const [field, ch] = process.argv.slice(1);
        const o = ch ? t.channels.find(c => c.channel_name === ch) : t;
        console.log(o && o[field] !== undefined ? o[field] : "none"); } catch (e) { console.log("none"); } });' "$3" "${4:-}"
}
http_post() {
  exec 3<>/dev/tcp/127.0.0.1/"$1" || return 1
  printf 'POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
# publish TCP TOPIC FILE: every line of FILE, raw, with nsq-pub (answered OK before it exits).
publish() { nsq-pub -q --raw -t "$2" --nsqd-tcp-address 127.0.0.1:"$1" "$3"; }
# age: --msg-ttl is 200ms below; the messages published before this are older than that after it.
# (The passing of time is what is tested: no condition can stand in for it.)
age() { sleep 0.4; }

# --- flags ------------------------------------------------------------------------------------------
run nsq-broker --msg-ttl 5parsecs
expect "bad --msg-ttl" 64
expect_err "names the flag" "--msg-ttl"
run nsq-broker --topic-msg-ttl 'bad topic!=1s'
expect "bad topic in --topic-msg-ttl" 64
expect_err "says the topic name is wrong" '"bad topic!" is not a valid topic name'
run nsq-broker --topic-msg-ttl t=forever
expect "bad duration in --topic-msg-ttl" 64
expect_err "says the duration is wrong" 'invalid duration "forever"'
run nsq-broker --topic-msg-ttl t
expect "--topic-msg-ttl without =" 64
expect_err "wants TOPIC=DURATION" "want TOPIC=DURATION"
run nsq-broker --ephemeral-overflow sometimes
expect "bad --ephemeral-overflow" 64
printf 'topic_msg_ttl = ["a=1s", "b=soon"]\n' >"$T/bad.toml"
run nsq-broker --config "$T/bad.toml"
expect "bad topic_msg_ttl in --config: a configuration error" 78
expect_err "names the value" "b=soon"
expect_err "names the file and line" "bad.toml:1:"

# --- hold: a backlog of 3x --mem-queue-size reaches a fresh nsq-tail whole, in order -------------------
seq -f 'line-%04g' 1 300 >"$T/backlog"
for mode in memory disk; do
  args=(--mem-queue-size 100)
  [ $mode = disk ] && args+=(--data-path "$T/data-$mode")
  start_broker h "${args[@]}"
  publish $h_tcp backlog "$T/backlog"
  check "$mode: the topic holds the backlog" test "$(stat $h_http backlog depth)" = 300
  timeout 30 nsq-tail -q -t backlog --nsqd-tcp-address 127.0.0.1:$h_tcp -n 300 | cat >"$T/got-$mode"
  if cmp -s "$T/backlog" "$T/got-$mode"; then ok; else
    bad "$mode: nsq-tail on a fresh ephemeral channel gets all 300, in order" \
      "$(wc -l <"$T/got-$mode") lines; $(diff "$T/backlog" "$T/got-$mode" | head -5)"
  fi
  check "$mode: the topic is drained" test "$(stat $h_http backlog depth)" = 0
  kill $h_pid
  wait $h_pid
done

# --- drop: nsqd's behaviour, counted and logged --------------------------------------------------------
start_broker d --mem-queue-size 100 --ephemeral-overflow drop -v
http_post $d_http '/topic/create?topic=drops' >/dev/null  # nsqd makes a channel only in a topic that exists
http_post $d_http '/channel/create?topic=drops&channel=watch%23ephemeral' >/dev/null
publish $d_tcp drops "$T/backlog"
check "drop: the channel holds 100" test "$(stat $d_http drops depth 'watch#ephemeral')" = 100
check "drop: 200 counted in /stats" test "$(stat $d_http drops dropped_count 'watch#ephemeral')" = 200
text=$(http_get $d_http '/stats?topic=drops')
case $text in *"dropped: 200"*) ok ;; *) bad "drop: /stats text shows dropped: 200" "$text" ;; esac
metrics=$(http_get $d_http /metrics)
case $metrics in *'nsq_channel_dropped_total{topic="drops",channel="watch#ephemeral"} 200'*) ok ;;
  *) bad "drop: /metrics counts them" "$(grep dropped <<<"$metrics")" ;; esac
if wait_for 10 grep -q 'CHANNEL(watch#ephemeral): 200 messages dropped' "$T/d.log"; then ok; else
  bad "drop: one summary line in the log" "$(grep -i drop "$T/d.log" | head -3)"
fi
check "drop: not one line per message" test "$(grep -c 'messages dropped' "$T/d.log")" -eq 1
timeout 30 nsq-tail -q -t drops -c 'watch#ephemeral' --nsqd-tcp-address 127.0.0.1:$d_tcp -n 100 | cat >"$T/got-drop"
head -100 "$T/backlog" | cmp -s - "$T/got-drop" && ok || bad "drop: the first 100 are delivered" "$(head -3 "$T/got-drop")"
kill $d_pid
wait $d_pid

# --- --msg-ttl, and --topic-msg-ttl overriding it --------------------------------------------------------
start_broker m --msg-ttl 200ms --topic-msg-ttl keep=0 -v
for t in ttl keep; do
  http_post $m_http "/topic/create?topic=$t" >/dev/null
  http_post $m_http "/channel/create?topic=$t&channel=c" >/dev/null
done
seq -f 'old-%g' 1 5 >"$T/old"
seq -f 'new-%g' 1 3 >"$T/new"
publish $m_tcp ttl "$T/old"
publish $m_tcp keep "$T/old"
age
publish $m_tcp ttl "$T/new"
timeout 30 nsq-tail -q -t ttl -c c --nsqd-tcp-address 127.0.0.1:$m_tcp -n 3 | cat >"$T/got-ttl"
cmp -s "$T/new" "$T/got-ttl" && ok || bad "ttl: only the young messages are delivered" "$(cat "$T/got-ttl")"
if wait_for 10 eval '[ "$(stat $m_http ttl expired_count c)" = 5 ]'; then ok; else
  bad "ttl: 5 expired in /stats" "$(stat $m_http ttl expired_count c)"
fi
case $(http_get $m_http /metrics) in *'nsq_channel_expired_total{topic="ttl",channel="c"} 5'*) ok ;;
  *) bad "ttl: /metrics counts them" ;; esac
if wait_for 10 grep -q 'TOPIC(ttl): CHANNEL(c): 5 messages expired (older than the TTL 200ms)' "$T/m.log"; then ok; else
  bad "ttl: a summary in the log" "$(grep -i expired "$T/m.log" | head -3)"
fi
timeout 30 nsq-tail -q -t keep -c c --nsqd-tcp-address 127.0.0.1:$m_tcp -n 5 | cat >"$T/got-keep"
cmp -s "$T/old" "$T/got-keep" && ok || bad "ttl: --topic-msg-ttl keep=0 keeps them" "$(cat "$T/got-keep")"
check "ttl: none expired on keep" test "$(stat $m_http keep expired_count c)" = 0
kill $m_pid
wait $m_pid

# --- --durable: expired messages read from disk are done with, even after a kill -9 ----------------------
start_broker u --durable --data-path "$T/durable" --msg-ttl 200ms
http_post $u_http '/topic/create?topic=dur' >/dev/null
http_post $u_http '/channel/create?topic=dur&channel=c' >/dev/null
publish $u_tcp dur "$T/old"
age
publish $u_tcp dur "$T/new"
timeout 30 nsq-tail -q -t dur -c c --nsqd-tcp-address 127.0.0.1:$u_tcp -n 3 | cat >"$T/got-dur"
cmp -s "$T/new" "$T/got-dur" && ok || bad "durable: only the young messages are delivered" "$(cat "$T/got-dur")"
if wait_for 10 eval '[ "$(stat $u_http dur expired_count c)" = 5 ] && [ "$(stat $u_http dur in_flight_count c)" = 0 ] &&
  [ "$(stat $u_http dur client_count c)" = 0 ]'; then ok; else bad "durable: 5 expired, 3 finished"; fi
echo marker >"$T/marker"
publish $u_tcp dur "$T/marker"  # answered once synced: the channel's position is committed with it
kill -9 $u_pid
wait $u_pid 2>/dev/null
start_broker u2 --durable --data-path "$T/durable"  # no --msg-ttl: anything not done with would come back
check "durable: after kill -9, only the marker is left" test "$(stat $u2_http dur depth c)" = 1
timeout 30 nsq-tail -q -t dur -c c --nsqd-tcp-address 127.0.0.1:$u2_tcp -n 1 | cat >"$T/got-after"
cmp -s "$T/marker" "$T/got-after" && ok || bad "durable: the marker comes next" "$(cat "$T/got-after")"
finish
