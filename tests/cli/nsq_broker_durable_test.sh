#!/usr/bin/env bash
# nsq-broker --durable: kill -9 during 100,000 publishes loses no message the broker answered OK.
# Published (input minus nsq-pub's rejects) must be a subset of what a consumer gets after a
# restart on the same --data-path, and what it gets must be a subset of the input.
source "$(dirname "$0")/lib.sh"

# depth PORT: topic t's depth plus channel c's, from /stats.
depth() {
  http_get "$1" '/stats?format=json&topic=t' 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      try { const j = JSON.parse(s); const t = j.topics[0];
        console.log(t.depth + (t.channels[0] ? t.channels[0].depth : 0)); } catch (e) { console.log(0); } });'
}

# Without --data-path, --durable is refused with a clear message.
run nsq-broker --durable --tcp-address 127.0.0.1:0 --http-address ""
expect "--durable without --data-path" 78
expect_err "says why" "--durable needs --data-path"

n=100000
seq -f 'msg-%06g' 1 $n >"$T/input"
tcp=$(free_port)
broker_args=(--durable --data-path "$T/data")
# start: (re)starts the broker on the same TCP port and --data-path; sets $http and $pid.
start() {
  FIXED_TCP=$tcp start_broker b "${broker_args[@]}"
  http=$b_http pid=$b_pid
}
start
http_post "$http" '/topic/create?topic=t' >/dev/null  # nsqd makes a channel only in a topic that exists
reply=$(http_post "$http" '/channel/create?topic=t&channel=c')
check "channel created first" test -n "$(http_get "$http" '/stats?format=json&topic=t' | grep '"channel_name":"c"')"

# Publish in the background (rate-limited so the kill lands mid-way); kill -9 the broker once
# more than 20,000 are stored.
nsq-pub --raw --rate 40000 -t t --nsqd-tcp-address 127.0.0.1:"$tcp" --retry-timeout 2s --connect-timeout 1s \
  --rejects "$T/rejects" "$T/input" >/dev/null 2>"$T/pub.log" &
pub=$!
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ] && [ "$(depth "$http")" -le 20000 ]; do sleep 0.02; done
d=$(depth "$http")
check "more than 20,000 stored before the kill" test "$d" -gt 20000
kill -9 $pid
wait $pid 2>/dev/null
wait $pub
pub_status=$?
check "nsq-pub says some lines failed" test "$pub_status" -ne 0
touch "$T/rejects"
node -e '
  const fs = require("fs");
  for (const l of fs.readFileSync(process.argv[1], "utf8").split("\n"))
    if (l) console.log(JSON.parse(l).input);' "$T/rejects" | sort -u >"$T/rejected"
comm -23 "$T/input" "$T/rejected" >"$T/published"
published=$(wc -l <"$T/published")
check "some were published before the kill ($published)" test "$published" -gt 20000
check "some were rejected after the kill" test "$published" -lt $n

# Restart on the same --data-path and consume everything that is there.
start
stored=$(depth "$http")
check "at least every published message is stored ($stored >= $published)" test "$stored" -ge "$published"
timeout 120 nsq-tail -t t -c c --nsqd-tcp-address 127.0.0.1:"$tcp" -n "$stored" >"$T/delivered" 2>"$T/tail.log"
check "nsq-tail got $stored messages" test "$(wc -l <"$T/delivered")" -eq "$stored"
sort -u "$T/delivered" >"$T/delivered.sorted"
lost=$(comm -23 "$T/published" "$T/delivered.sorted" | wc -l)
check "no acknowledged message lost ($lost lost of $published)" test "$lost" -eq 0
extra=$(comm -13 "$T/input" "$T/delivered.sorted" | wc -l)
check "nothing delivered that was not in the input ($extra)" test "$extra" -eq 0

# In flight is not done with: messages delivered but not FINished come back after a kill -9,
# even once the periodic sync (--sync-timeout 2s) has run since their delivery.
http_post "$http" '/topic/create?topic=t2' >/dev/null
http_post "$http" '/channel/create?topic=t2&channel=c' >/dev/null
seq -f 'inflight-%g' 1 10 >"$T/input2"
nsq-pub --raw -t t2 --nsqd-tcp-address 127.0.0.1:"$tcp" "$T/input2" 2>"$T/pub2.log"
check "10 published to t2" test $? -eq 0
exec 4<>/dev/tcp/127.0.0.1/"$tcp"
printf '  V2SUB t2 c\nRDY 10\n' >&4
got=$(timeout 1 cat <&4 | tr -c '[:print:]' '.')
check "the raw consumer got the 10 messages (not FINished)" test "$(grep -o 'inflight-[0-9]*' <<<"$got" | wc -l)" -eq 10
sleep 3
kill -9 $pid
wait $pid 2>/dev/null
exec 4<&-
start
timeout 30 nsq-tail -t t2 -c c --nsqd-tcp-address 127.0.0.1:"$tcp" -n 10 2>"$T/tail2.log" | sort >"$T/delivered2"
check "the 10 in-flight messages are delivered again" cmp -s <(sort "$T/input2") "$T/delivered2"

# A torn last record (a crash in the middle of a write): detected at restart, set aside in a .bad
# file, reported in the log; every record before it is delivered and the broker serves on.
http_post "$http" '/topic/create?topic=t3' >/dev/null
http_post "$http" '/channel/create?topic=t3&channel=c' >/dev/null
seq -f 'torn-%g' 1 100 >"$T/input3"
nsq-pub --raw -t t3 --nsqd-tcp-address 127.0.0.1:"$tcp" "$T/input3" 2>"$T/pub3.log"
check "100 published to t3" test $? -eq 0
kill -TERM $pid
wait $pid
check "SIGTERM before tearing exits 0" test $? -eq 0
segment=$(ls "$T/data"/t3:c.diskqueue.*.dat | sort | tail -n 1)
size=$(stat -c %s "$segment")
truncate -s $((size - 3)) "$segment"
start
check "the restarted broker reports the torn record" \
  grep -q "$(basename "$segment"): torn record at byte .* set aside in $(basename "$segment").bad-1" "$T/b.log"
check "the torn bytes are kept aside" test -s "$segment.bad-1"
timeout 30 nsq-tail -t t3 -c c --nsqd-tcp-address 127.0.0.1:"$tcp" -n 99 2>"$T/tail3.log" | sort >"$T/delivered3"
check "the 99 records before the torn one are delivered" cmp -s <(head -n 99 "$T/input3" | sort) "$T/delivered3"
depths3() { http_get "$http" '/stats?format=json&topic=t3' | grep -o '"depth":[0-9]*' | sort -u | tr '\n' ' '; }
check "nothing else is left (topic and channel depth 0)" wait_for 5 eval '[ "$(depths3)" = "\"depth\":0 " ]'
check "the broker still answers" test "$(http_get "$http" /ping)" = OK

kill $pid
wait $pid
status=$?
expect "SIGTERM exits 0" 0
echo "published $published, stored after kill -9 $stored, lost $lost"

# --- damaged metadata never costs data (without --durable) -----------------------------------------
# A disk queue's .meta that does not fit its segments (here: a segment that does not exist, which
# used to delete the 10,000-message segment in silence) is reported and not used: every message
# is delivered again. A wrong type in nsq-broker.dat is skipped and named; the broker starts.
mtcp=$(free_port)
mstart() {
  FIXED_TCP=$mtcp start_broker m --data-path "$T/mdata"
}
mstart
for t in tm tp; do  # the topic first: nsqd makes a channel only in a topic that exists
  http_post "$m_http" "/topic/create?topic=$t" >/dev/null
  http_post "$m_http" "/channel/create?topic=$t&channel=c" >/dev/null
done
seq -f 'meta-%g' 1 10000 >"$T/input4"
nsq-pub --raw -t tm --nsqd-tcp-address 127.0.0.1:"$mtcp" "$T/input4" 2>"$T/pub4.log"
check "10,000 published to tm" test $? -eq 0
kill -TERM $m_pid
wait $m_pid
check "the 10,000 are on disk in channel c's segment" test -s "$T/mdata/tm:c.diskqueue.000000.dat"
printf 'pipekit-disk-queue 2\n7 0\n' >"$T/mdata/tm:c.diskqueue.meta"
printf '{"version":"1.3.0","topics":[{"name":"tp","paused":"yes","channels":[{"name":"c","paused":1},{"name":7}]},%s]}\n' \
  '{"name":"tm","paused":false,"channels":[{"name":"c","paused":false}]}' \
  >"$T/mdata/nsq-broker.dat"
mstart
check "the broker reports the .meta it did not use" \
  grep -q 'tm:c.diskqueue.meta: consumed position 7 0 is past the last segment on disk (0).*delivered again' "$T/m.log"
check "the broker names the field of nsq-broker.dat it skipped" \
  grep -q 'nsq-broker.dat: topic "tp": "paused" is "yes", not true or false; skipped' "$T/m.log"
check "... and the channel's" grep -q 'topic "tp" channel "c": "paused" is 1' "$T/m.log"
check "... and the entry without a name" grep -q 'topic "tp": a channel without a "name" string skipped: {"name":7}' "$T/m.log"
check "topic tp and its channel c are still there" \
  test -n "$(http_get "$m_http" '/stats?format=json&topic=tp' | grep '"channel_name":"c"')"
timeout 60 nsq-tail -t tm -c c --nsqd-tcp-address 127.0.0.1:"$mtcp" -n 10000 2>"$T/tail4.log" | sort >"$T/delivered4"
check "all 10,000 are delivered after the damaged .meta" cmp -s <(sort "$T/input4") "$T/delivered4"
kill -TERM $m_pid
wait $m_pid
printf '{"topics":[{"name":"tp",' >"$T/mdata/nsq-broker.dat"
mstart
check "a syntax error in nsq-broker.dat: the broker starts, says so and keeps the file" \
  sh -c "grep -q 'nsq-broker.dat is not JSON with a \"topics\" array; every topic and channel in it skipped (kept as .*nsq-broker.dat.bad)' '$T/m.log' && test -s '$T/mdata/nsq-broker.dat.bad'"
kill -TERM $m_pid
wait $m_pid
finish
