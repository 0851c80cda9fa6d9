#!/usr/bin/env bash
# nsq-pub against nsq-broker, checked with nsqjs (an independent NSQ client) and the broker's /stats:
# every line published or rejected with its reason, nothing lost, the exit status says which.
source "$(dirname "$0")/lib.sh"
consume="node $PIPEKIT_SRC/tests/tools/nsq_consume.mjs"

# count HTTP TOPIC: the topic's message_count in /stats (0 when absent).
count() {
  http_get "$1" "/stats?format=json" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const t = JSON.parse(s).topics.find((t) => t.topic_name === process.argv[1]);
      console.log(t ? t.message_count : 0);
    });' "$2"
}
# wait_count HTTP TOPIC N: until the topic has N messages (deadline 20 s).
wait_count() {
  local deadline=$((SECONDS + 20)) c
  while [ $SECONDS -lt $deadline ]; do
    c=$(count "$1" "$2")
    [ "$c" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "  $2 has $c messages, want $3"
  return 1
}

# --- flags and usage ---------------------------------------------------------------------------
run nsq-pub --version
expect "--version" 0
case $out in "nsq-pub "*) ok ;; *) bad "--version names the program" ;; esac
run nsq-pub --bogus
expect "unknown flag: 64" 64
run nsq-pub -m '{}'
expect "no topic: 64" 64
expect_err "says what is missing" "--topic"
run nsq-pub -t 'bad topic!' -m '{}'
expect "bad topic name: 64" 64
run nsq-pub -t t -m '{}' "$T/nowhere.jsonl"
expect "--message with files: 64" 64
run nsq-pub -t t "$T/nowhere.jsonl"
expect "missing input file: 66" 66
expect_err "names the file" "$T/nowhere.jsonl"
run nsq-pub -t t --body-pointer 'no-slash' -m '{}'
expect "bad JSON Pointer: 64" 64

# --- no broker: 69, the line rejected with its reason --------------------------------------------
port=$(free_port)
run nsq-pub -t t --nsqd-tcp-address 127.0.0.1:$port --retry-timeout 500ms --rejects "$T/rej0.jsonl" -m '{"a":1}'
expect "no broker reachable: 69" 69
check "the message is a reject with reason unavailable" grep -q '"code":"unavailable"' "$T/rej0.jsonl"
check "its input is kept" grep -q '"input":"{\\"a\\":1}"' "$T/rej0.jsonl"

# --- 10,000 lines, the last without a newline: every one arrives intact ------------------------
start_broker b1
for i in $(seq 1 10000); do printf '{"n":%d,"s":"line %d"}\n' $i $i; done >"$T/in.jsonl"
printf '{"n":"last","s":"no newline"}' >>"$T/in.jsonl"
run nsq-pub -t bulk --nsqd-tcp-address 127.0.0.1:$b1_tcp --stats "$T/in.jsonl"
expect "10,001 lines published: 0" 0
expect_err "--stats counts them" "10001 published, 0 rejected"
check "broker counts 10,001" wait_count $b1_http bulk 10001
$consume --nsqd 127.0.0.1:$b1_tcp --topic bulk --count 10001 >"$T/got.txt"
if cmp -s <(sort "$T/got.txt") <(cat "$T/in.jsonl"; echo) ; then ok; else
  sort "$T/got.txt" >"$T/got.sorted"; (cat "$T/in.jsonl"; echo) | sort >"$T/want.sorted"
  if cmp -s "$T/got.sorted" "$T/want.sorted"; then ok; else bad "nsqjs reads back every line intact" "$(diff "$T/got.sorted" "$T/want.sorted" | head -5)"; fi
fi

# --- from stdin in several files, with empty lines skipped and counted --------------------------
printf '{"f":1}\n\n{"f":2}\n' >"$T/a.jsonl"
run_in $'{"f":3}\n' nsq-pub -t multi --nsqd-tcp-address 127.0.0.1:$b1_tcp --stats "$T/a.jsonl" -
expect "files and - in order: 0" 0
expect_err "the empty line is counted" "1 empty skipped"
check "3 messages" wait_count $b1_http multi 3

# --- rejects: each bad line reported with its reason and line number, the rest published -------
start_broker b2 --max-msg-size 100
big=$(printf '{"big":"%0150d"}' 0)
printf '%s\n' '{"topic":"ok_a","v":1}' 'not json' '{"topic":"bad topic!","v":2}' '{"v":3}' \
  "{\"topic\":\"ok_a\",\"v\":$(printf '"%0150d"' 0)}" '{"topic":"ok_b","v":4}' >"$T/mixed.jsonl"
run nsq-pub --topic-pointer /topic --nsqd-tcp-address 127.0.0.1:$b2_tcp --rejects "$T/rej.jsonl" "$T/mixed.jsonl"
expect "some lines rejected: 65" 65
check "4 rejects" test "$(wc -l <"$T/rej.jsonl")" -eq 4
check "invalid JSON on line 2" grep -q '"line":2,"code":"invalid_json"' "$T/rej.jsonl"
check "bad topic on line 3" grep -q '"line":3,"code":"bad_topic"' "$T/rej.jsonl"
check "missing topic field on line 4" grep -q '"line":4,"code":"missing_field"' "$T/rej.jsonl"
check "over the broker's max-msg-size on line 5" grep -q '"line":5,"code":"too_large"' "$T/rej.jsonl"
expect_err "logged with source and line" "mixed.jsonl:2:"
check "the good lines went to their topics (a)" wait_count $b2_http ok_a 1
check "the good lines went to their topics (b)" wait_count $b2_http ok_b 1

# --- nsqd's HTTP API instead of TCP -------------------------------------------------------------
seq 1 1000 | sed 's/.*/{"h":&}/' >"$T/h.jsonl"
run nsq-pub -t overhttp --nsqd-http-address 127.0.0.1:$b2_http --batch-size 64 "$T/h.jsonl"
expect "--nsqd-http-address: 0" 0
check "1000 messages through /mpub" wait_count $b2_http overhttp 1000
got=$($consume --nsqd 127.0.0.1:$b2_tcp --topic overhttp --count 1000 | sort)
check "read back intact" test "$got" = "$(sort "$T/h.jsonl")"
printf '{"ok":1}\n%s\n{"ok":2}\n' "$big" >"$T/hbig.jsonl"
run nsq-pub -t overhttp2 --nsqd-http-address 127.0.0.1:$b2_http --rejects "$T/hrej.jsonl" "$T/hbig.jsonl"
expect "HTTP: the oversized line rejected: 65" 65
check "reason too_large, line 2, from the broker's 413" grep -q '"line":2,"code":"too_large","error":"127.0.0.1:[0-9]*: HTTP 413 MSG_TOO_BIG"' "$T/hrej.jsonl"
check "the other two published" wait_count $b2_http overhttp2 2
run nsq-pub -t 'events#ephemeral' --nsqd-http-address 127.0.0.1:$b2_http -m '{"e":1}'
expect "HTTP to an #ephemeral topic: 0" 0
check "it is in events#ephemeral (the topic escaped in the URL)" wait_count $b2_http 'events#ephemeral' 1
check "not in the durable topic events ('#' not taken for a fragment)" test "$(count $b2_http events)" -eq 0
run nsq-pub -t t --nsqd-http-address 127.0.0.1:$(free_port) --retry-timeout 300ms -m '{}'
expect "HTTP address unreachable: 69" 69

# --- --raw and --body-pointer --------------------------------------------------------------------
run_in $'plain text, not JSON\n' nsq-pub --raw -t raw --nsqd-tcp-address 127.0.0.1:$b1_tcp
expect "--raw publishes non-JSON: 0" 0
check "raw message counted" wait_count $b1_http raw 1
run_in $'{"user":7,"data":{"x":[1,2]}}\n' nsq-pub -t body --body-pointer /data --nsqd-tcp-address 127.0.0.1:$b1_tcp
expect "--body-pointer: 0" 0
got=$($consume --nsqd 127.0.0.1:$b1_tcp --topic body --count 1)
check "only the pointed part is published" test "$got" = '{"x":[1,2]}'

# --- --defer: not delivered before the delay ----------------------------------------------------
t0=$(date +%s%3N)
run nsq-pub -t deferred --defer 1500ms --nsqd-tcp-address 127.0.0.1:$b1_tcp -m '{"d":1}'
expect "--defer: 0" 0
got=$($consume --nsqd 127.0.0.1:$b1_tcp --topic deferred --count 1 --timeout 10000)
check "the deferred message arrives" test "$got" = '{"d":1}'
check "not before the delay" test $(($(date +%s%3N) - t0)) -ge 1400

# A --defer over the broker's --max-req-timeout (1h, nsqd's default too): the broker answers the first
# DPUB with E_INVALID and closes the connection; every DPUB would get the same, so every line is
# rejected at once with that answer (not one per connection, the rest after --retry-timeout).
seq 1 50 | sed 's/.*/{"dl":&}/' >"$T/dlong.jsonl"
t0=$(date +%s%3N)
run timeout -k 5 60 nsq-pub -t deferlong --defer 2h --nsqd-tcp-address 127.0.0.1:$b1_tcp --rejects "$T/dlong.rej" "$T/dlong.jsonl"
elapsed=$(($(date +%s%3N) - t0))
expect "--defer over the broker's limit: 65" 65
check "ended at once, not after --retry-timeout (took $elapsed ms)" test $elapsed -lt 10000
check "all 50 rejected with the broker's answer" test "$(grep -c \
  '"code":"broker_rejected","error":"[^"]*E_INVALID DPUB timeout 7200000 out of range' "$T/dlong.rej")" -eq 50

# --- a broker that comes up late: lines wait (within --retry-timeout) and are published ----------
late=$(free_port)
seq 1 500 | sed 's/.*/{"late":&}/' >"$T/late.jsonl"
nsq-pub -t late --nsqd-tcp-address 127.0.0.1:$late --retry-timeout 30s "$T/late.jsonl" 2>"$T/late.err" &
pub=$!
daemon_pids+=($pub)
sleep 0.3  # not synchronisation: lets nsq-pub fail to connect at least once before the broker exists
FIXED_TCP=$late start_broker b3
wait $pub
status=$?
expect "published once the broker is up: 0" 0
check "all 500 arrived" wait_count $b3_http late 500
check "the refused connection was logged" grep -q reconnecting "$T/late.err"

# --- failover: the first broker dies mid-stream, the rest goes to the second --------------------
start_broker f1
start_broker f2
seq 1 3000 | sed 's/.*/{"fo":&}/' >"$T/fo.jsonl"
nsq-pub -t fo --mode failover --rate 3000 --nsqd-tcp-address 127.0.0.1:$f1_tcp --nsqd-tcp-address 127.0.0.1:$f2_tcp \
  --rejects "$T/fo.rej" "$T/fo.jsonl" 2>"$T/fo.err" &
pub=$!
daemon_pids+=($pub)
if wait_count $f1_http fo 300; then ok; else bad "the first broker takes messages first"; fi
kill -9 $f1_pid
wait $f1_pid 2>/dev/null
wait $pub
status=$?
expect "failover: every line published: 0" 0
check "no rejects" test ! -s "$T/fo.rej"
check "the second broker took over" test "$(count $f2_http fo)" -gt 0

# --- the broker restarts mid-publish: nsq-pub reconnects, every line is published once --------
start_broker r1 --data-path "$T/r1data"
seq 1 10000 | sed 's/.*/{"rs":&}/' >"$T/rs.jsonl"
nsq-pub -t rs --rate 4000 --retry-timeout 60s --nsqd-tcp-address 127.0.0.1:$r1_tcp --rejects "$T/rs.rej" \
  "$T/rs.jsonl" 2>"$T/rs.err" &
pub=$!
daemon_pids+=($pub)
if wait_count $r1_http rs 2000; then ok; else bad "publishing under way before the restart"; fi
kill -TERM $r1_pid
wait $r1_pid
check "the broker stopped cleanly" test $? -eq 0
FIXED_TCP=$r1_tcp start_broker r2 --data-path "$T/r1data"
wait $pub
status=$?
expect "every line published across the restart: 0" 0
check "no rejects" test ! -s "$T/rs.rej"
check "the lost connection was noticed and retried" grep -q reconnecting "$T/rs.err"
nsq-tail -q -t rs -c all --nsqd-tcp-address 127.0.0.1:$r2_tcp -n 10000 >"$T/rs.out" 2>"$T/rs.tail" &
tail_pid=$!
daemon_pids+=($tail_pid)
if ! wait_for 60 eval "! kill -0 $tail_pid 2>/dev/null"; then
  bad "nsq-tail -n 10000 ends within 60 s" "$(wc -l <"$T/rs.out") lines so far"
  kill $tail_pid
fi
wait $tail_pid
check "10,000 messages read back after the restart" test "$(wc -l <"$T/rs.out")" -eq 10000
check "each line exactly once" cmp -s <(sort "$T/rs.out") <(sort "$T/rs.jsonl")

# --- all: every message to every broker ---------------------------------------------------------
start_broker a1
start_broker a2
seq 1 1000 | sed 's/.*/{"all":&}/' >"$T/all.jsonl"
run nsq-pub -t every --mode all --nsqd-tcp-address 127.0.0.1:$a1_tcp --nsqd-tcp-address 127.0.0.1:$a2_tcp "$T/all.jsonl"
expect "--mode all: 0" 0
check "broker 1 has all 1000" wait_count $a1_http every 1000
check "broker 2 has all 1000" wait_count $a2_http every 1000

# --- every command has a deadline: half of --retry-timeout, and its lines' --retry-timeout --------
# A broker that takes MPUBs and never answers them while its heartbeats go on (a stand-in: no real
# broker does this on demand): nsq-pub drops it and rejects every line by --retry-timeout.
sport=$(free_port)
node "$PIPEKIT_SRC/tests/tools/nsq_unanswering_broker_standin.mjs" --port $sport --log "$T/standin.log" &
daemon_pids+=($!)
check "the stand-in listens" wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sport" 2>/dev/null
seq 1 300 | sed 's/.*/{"na":&}/' >"$T/na.jsonl"
t0=$(date +%s%3N)
run timeout -k 5 60 nsq-pub -t na --nsqd-tcp-address 127.0.0.1:$sport --retry-timeout 2s --rejects "$T/na.rej" "$T/na.jsonl"
elapsed=$(($(date +%s%3N) - t0))
expect "MPUBs never answered: every line rejected, 65" 65
check "ended within --retry-timeout and a margin (took $elapsed ms)" test $elapsed -lt 6000
check "the stand-in was sent the MPUBs" grep -q '^MPUB na ' "$T/standin.log"
check "all 300 rejected as unavailable, for want of an answer" test "$(grep -c \
  '"code":"unavailable","error":"not published within --retry-timeout: 127.0.0.1:[0-9]*: no answer to MPUB within' "$T/na.rej")" -eq 300
# A broker that goes silent (frozen) with MPUBs in flight: no 60 s wait for missed heartbeats.
start_broker s1
mkfifo "$T/sfifo"
timeout -k 5 60 nsq-pub -t silent --nsqd-tcp-address 127.0.0.1:$s1_tcp --retry-timeout 2s --rejects "$T/s.rej" \
  <"$T/sfifo" 2>"$T/s.err" &
pub=$!
daemon_pids+=($pub)
exec 5>"$T/sfifo"
echo '{"s":0}' >&5
check "the first line is published before the broker freezes" wait_count $s1_http silent 1
freeze $s1_pid
t0=$(date +%s%3N)
for i in $(seq 1 100); do echo "{\"s\":$i}"; done >&5
exec 5>&-
wait $pub
status=$?
elapsed=$(($(date +%s%3N) - t0))
kill -CONT $s1_pid
expect "a frozen broker: the lines in flight rejected, 65" 65
check "ended within --retry-timeout and a margin (took $elapsed ms)" test $elapsed -lt 6000
check "the 100 lines sent after the freeze rejected as unavailable" test "$(grep -c '"code":"unavailable"' "$T/s.rej")" -eq 100
check "the reason: no answer" grep -q '"error":"not published within --retry-timeout: 127.0.0.1:[0-9]*: no answer to MPUB' "$T/s.rej"

# --- SIGINT while the reader waits on an open pipe with nothing in it: it stops at once, what was
# read is published, the start of an unfinished line is rejected (interrupted) ------------------
rm -f "$T/fifo2"
mkfifo "$T/fifo2"
nsq-pub -t intr --nsqd-tcp-address 127.0.0.1:$b1_tcp --rejects "$T/intr.rej" <"$T/fifo2" 2>"$T/intr.err" &
pub=$!
daemon_pids+=($pub)
exec 6>"$T/fifo2"
for i in $(seq 1 20); do echo "{\"i\":$i}" >&6; done
printf '{"unfinished":' >&6
check "20 lines published while the pipe stays open" wait_count $b1_http intr 20
kill -INT $pub
if wait_for 5 eval "! kill -0 $pub 2>/dev/null"; then ok; else bad "SIGINT ends nsq-pub within 5 s"; kill -9 $pub; fi
wait $pub
status=$?
exec 6>&-
expect "SIGINT with an unfinished line: 65" 65
check "the unfinished line is rejected as interrupted, with what was read of it" \
  grep -q '"line":21,"code":"interrupted",.*"input":"{\\"unfinished\\":"' "$T/intr.rej"
check "only it" test "$(wc -l <"$T/intr.rej")" -eq 1
check "the 20 lines and no more" test "$(count $b1_http intr)" -eq 20
# A second signal: what awaits an answer (from the stand-in that never answers) is rejected at once.
: >"$T/standin.log"
nsq-pub -t twice --nsqd-tcp-address 127.0.0.1:$sport --retry-timeout 60s --rejects "$T/twice.rej" "$T/na.jsonl" \
  2>"$T/twice.err" &
pub=$!
daemon_pids+=($pub)
check "the MPUBs went out" wait_for 10 grep -q '^MPUB twice 100' "$T/standin.log"
kill -INT $pub
check "the first signal is taken" wait_for 10 grep -q "stopping" "$T/twice.err"
kill -INT $pub
if wait_for 5 eval "! kill -0 $pub 2>/dev/null"; then ok; else bad "a second SIGINT ends nsq-pub within 5 s"; kill -9 $pub; fi
wait $pub
status=$?
expect "a second SIGINT: 130" 130
check "every line rejected as interrupted" test "$(grep -c '"code":"interrupted"' "$T/twice.rej")" -eq 300

# --- SIGTERM: what was read is published, then exit ---------------------------------------------
mkfifo "$T/fifo"
nsq-pub -t term --nsqd-tcp-address 127.0.0.1:$b1_tcp <"$T/fifo" 2>"$T/term.err" &
pub=$!
daemon_pids+=($pub)
exec 4>"$T/fifo"
for i in $(seq 1 50); do echo "{\"t\":$i}" >&4; done
check "50 lines published while the pipe stays open" wait_count $b1_http term 50
kill -TERM $pub
wait $pub
status=$?
exec 4>&-
expect "SIGTERM: exit 0" 0

finish
