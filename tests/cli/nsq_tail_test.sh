#!/usr/bin/env bash
# nsq-tail against nsq-broker, fed by nsq-pub and by nsqjs (an independent NSQ client): every
# message arrives, nothing is acknowledged before the reader consumed it, what was not consumed
# goes back to the broker at once.
source "$(dirname "$0")/lib.sh"
consume="node $PIPEKIT_SRC/tests/tools/nsq_consume.mjs"
publish="node $PIPEKIT_SRC/tests/tools/nsq_publish.mjs"

# chan HTTP TOPIC CHANNEL FIELD: a channel's field in /stats (depth, in_flight_count, ...; -1 when absent).
chan() {
  http_get "$1" "/stats?format=json&topic=$2" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const t = JSON.parse(s).topics.find((t) => t.topic_name === process.argv[1]);
      const c = t && t.channels.find((c) => c.channel_name === process.argv[2]);
      console.log(c ? c[process.argv[3]] : -1);
    });' "$2" "$3" "$4"
}
chan_is() { [ "$(chan "$1" "$2" "$3" "$4")" = "$5" ]; }
# nsq-broker takes back what a departing client left in flight (nsqd leaves it to the timeout) and
# counts it: a client right against nsqd leaves nothing, so every stop below checks the count is 0.
nothing_taken_back() { chan_is "$1" "$2" "$3" disconnect_requeue_count 0; }
# settled HTTP TOPIC CHANNEL: nothing in flight, and the depth no longer changes.
settled() { chan_is "$1" "$2" "$3" in_flight_count 0; }
# fill TCP TOPIC N: N JSON lines {"n":i} published with nsq-pub.
fill() {
  seq 1 "$3" | sed 's/.*/{"n":&}/' | nsq-pub -q -t "$2" --nsqd-tcp-address 127.0.0.1:$1
}
# make_channel HTTP TOPIC CHANNEL: creates a durable channel (so it gets the topic's messages).
make_channel() {  # the topic first: nsqd makes a channel only in a topic that exists
  curl -s -X POST "http://127.0.0.1:$1/topic/create?topic=$2" >/dev/null
  curl -s -X POST "http://127.0.0.1:$1/channel/create?topic=$2&channel=$3" >/dev/null
}

# --- flags and usage ---------------------------------------------------------------------------
run nsq-tail --version
expect "--version" 0
case $out in "nsq-tail "*) ok ;; *) bad "--version names the program" ;; esac
run nsq-tail --bogus
expect "unknown flag: 64" 64
run nsq-tail --nsqd-tcp-address 127.0.0.1:1
expect "no topic: 64" 64
expect_err "says what is missing" "--topic"
run nsq-tail -t 'bad topic!' --nsqd-tcp-address 127.0.0.1:1
expect "bad topic name: 64" 64
run nsq-tail -t t -c 'bad channel!' --nsqd-tcp-address 127.0.0.1:1
expect "bad channel name: 64" 64
run nsq-tail -t t --format xml
expect "bad format: 64" 64

start_broker b1

# --- 100,000 lines: nsq-pub -> broker -> nsq-tail (through a pipe), every line intact ------------
topic=bulk
curl -s -X POST "http://127.0.0.1:$b1_http/topic/create?topic=$topic" >/dev/null
make_channel $b1_http $topic all
for i in $(seq 1 100000); do echo "{\"n\":$i,\"s\":\"line $i\"}"; done >"$T/bulk.jsonl"
nsq-pub -q -t $topic --nsqd-tcp-address 127.0.0.1:$b1_tcp "$T/bulk.jsonl"
check "nsq-pub published 100,000" test $? -eq 0
timeout 60 nsq-tail -q -t $topic -c all --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 100000 | cat >"$T/bulk.out"
status=${PIPESTATUS[0]}
expect "-n 100000 through a pipe: 0" 0
check "100,000 lines" test "$(wc -l <"$T/bulk.out")" -eq 100000
if cmp -s <(sort "$T/bulk.out") <(sort "$T/bulk.jsonl"); then ok; else bad "content equal (sorted)"; fi
check "channel drained, nothing in flight" wait_for 5 chan_is $b1_http $topic all in_flight_count 0
check "channel depth 0" chan_is $b1_http $topic all depth 0

# --- to a file: the same, FIN after the write ------------------------------------------------------
fill $b1_tcp tofile 1000
make_channel $b1_http tofile f
timeout 20 nsq-tail -q -t tofile -c f --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 1000 >"$T/file.out"
status=$?
expect "-n 1000 to a file: 0" 0
check "1,000 lines in the file" test "$(sort -u "$T/file.out" | wc -l)" -eq 1000

# --- nsqjs wrote, nsq-tail reads: binary and multi-line bodies survive as envelopes ----------------
bodies=("$(printf 'line one\nline two' | base64 -w0)" "$(head -c 300 /dev/urandom | base64 -w0)"
  "$(printf '{"k":[1,2,3]}' | base64 -w0)" "$(printf 'plain text' | base64 -w0)")
printf '%s\n' "${bodies[@]}" | $publish --nsqd 127.0.0.1:$b1_tcp --topic bin --base64
check "nsqjs published 4 bodies" test $? -eq 0
timeout 20 nsq-tail -q -t bin -c env --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 4 --format envelope >"$T/env.out" ||
  bad "envelope read"
check "4 envelopes" test "$(wc -l <"$T/env.out")" -eq 4
node -e '
  const fs = require("fs");
  const want = process.argv.slice(2).map((b) => Buffer.from(b, "base64"));
  const got = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const bodies = got.map((e) => e.body_encoding === "base64" ? Buffer.from(e.body, "base64")
    : Buffer.from(typeof e.body === "string" ? e.body : JSON.stringify(e.body)));
  for (const w of want) if (!bodies.some((b) => b.equals(w))) { console.error("missing body", w); process.exit(1); }
  for (const e of got) {
    for (const k of ["id", "attempts", "timestamp", "topic", "channel", "broker", "body"]) if (!(k in e)) process.exit(2);
    if (e.topic !== "bin" || e.channel !== "env" || e.attempts !== 1) process.exit(3);
  }
  if (!got.some((e) => typeof e.body === "object" && e.body.k[2] === 3)) process.exit(4);
  if (!got.some((e) => e.body === "line one\nline two")) process.exit(5);
  if (!got.some((e) => e.body_encoding === "base64")) process.exit(6);' "$T/env.out" "${bodies[@]}"
check "every body intact (JSON as JSON, text as string, binary as base64)" test $? -eq 0
# body format: the multi-line and binary bodies come as envelopes, the others as lines.
make_channel $b1_http bin2 b
make_channel $b1_http bin2 b64
printf '%s\n' "${bodies[@]}" | $publish --nsqd 127.0.0.1:$b1_tcp --topic bin2 --base64
timeout 20 nsq-tail -q -t bin2 -c b --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 4 >"$T/body.out"
check "4 lines in body format" test "$(wc -l <"$T/body.out")" -eq 4
check "plain text as a line" grep -qx 'plain text' "$T/body.out"
check "JSON as a line" grep -qx '{"k":\[1,2,3\]}' "$T/body.out"
check "multi-line body as an envelope" grep -q '"body":"line one\\nline two"' "$T/body.out"
check "binary body as base64" grep -q '"body_encoding":"base64"' "$T/body.out"
timeout 20 nsq-tail -q -t bin2 -c b64 --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 4 --format envelope --binary >"$T/b64.out"
check "--binary: every body base64" test "$(grep -c '"body_encoding":"base64"' "$T/b64.out")" -eq 4

# --- deflate negotiated in IDENTIFY --------------------------------------------------------------
make_channel $b1_http defl d
fill $b1_tcp defl 5000
timeout 20 nsq-tail -q -t defl -c d --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 5000 --deflate --deflate-level 3 | cat >"$T/defl.out"
status=${PIPESTATUS[0]}
expect "--deflate: 0" 0
check "--deflate: 5,000 lines intact" test "$(sort -u "$T/defl.out" | wc -l)" -eq 5000 -a "$(grep -c '^{"n":[0-9]*}$' "$T/defl.out")" -eq 5000
check "--deflate: every one FINished" wait_for 5 chan_is $b1_http defl d in_flight_count 0

# --- snappy: nsq-pub --snappy -> broker -> nsq-tail --snappy, bodies across 64 KiB snappy chunks --------
make_channel $b1_http snap s
{
  seq 1 3000 | sed 's/.*/{"n":&}/'
  printf '{"big":"%s"}\n' "$(head -c 150000 /dev/zero | tr '\0' x)"            # compressible, 3 chunks
  printf '{"rnd":"%s"}\n' "$(head -c 100000 /dev/urandom | base64 -w0)"        # stored chunks
} >"$T/snap.jsonl"
run nsq-pub -q --snappy -t snap --nsqd-tcp-address 127.0.0.1:$b1_tcp "$T/snap.jsonl"
expect "nsq-pub --snappy: 0" 0
timeout 30 nsq-tail -q --snappy -t snap -c s --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 3002 | cat >"$T/snap.out"
status=${PIPESTATUS[0]}
expect "nsq-tail --snappy: 0" 0
if cmp -s <(sort "$T/snap.out") <(sort "$T/snap.jsonl"); then ok; else bad "--snappy: 3,002 lines intact (sorted)"; fi
check "--snappy: every one FINished" wait_for 5 chan_is $b1_http snap s in_flight_count 0
run nsq-tail --snappy --deflate -t snap
expect "--snappy with --deflate: 64" 64

# A client whose snappy stream is corrupt is disconnected; a snappy consumer beside it carries on.
make_channel $b1_http snap2 s
timeout 30 nsq-tail -q --snappy -t snap2 -c s --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 200 >"$T/snap2.out" &
tail_pid=$!
fill $b1_tcp snap2 100
check "snappy consumer got the first 100" wait_for 10 eval '[ "$(wc -l <"$T/snap2.out")" -eq 100 ]'
corrupt=$(node -e '
  const s = require("net").connect(+process.argv[1], "127.0.0.1");
  const body = Buffer.from(JSON.stringify({ feature_negotiation: true, snappy: true }));
  const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
  s.write(Buffer.concat([Buffer.from("  V2IDENTIFY\n"), len, body]));
  let got = Buffer.alloc(0), sent = false;
  s.on("data", (d) => {
    got = Buffer.concat([got, d]);
    if (!sent && got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) {
      sent = true;  // the IDENTIFY response: now a stream identifier and a chunk with a wrong CRC
      s.write(Buffer.concat([Buffer.from("ff060000734e61507059", "hex"), Buffer.from("0108000000000000", "hex"), Buffer.from("NOP\n")]));
    }
  });
  s.on("close", () => { console.log(sent ? "closed" : "closed early"); process.exit(0); });
  s.on("error", () => {});
  setTimeout(() => { console.log("still open"); process.exit(0); }, 10000);
' $b1_tcp)
check "a corrupt snappy stream closes its connection" test "$corrupt" = closed
fill $b1_tcp snap2 100
wait $tail_pid
status=$?
expect "the other snappy consumer is unaffected: 0" 0
check "it got all 200" test "$(sort -u "$T/snap2.out" | wc -l)" -eq 100 -a "$(wc -l <"$T/snap2.out")" -eq 200

# --- nsqjs reads what nsq-pub wrote ------------------------------------------------------------
make_channel $b1_http jsread js
fill $b1_tcp jsread 500
$consume --nsqd 127.0.0.1:$b1_tcp --topic jsread --channel js --count 500 >"$T/js.out"
check "nsqjs reads 500 from nsq-pub" test "$(sort -u "$T/js.out" | wc -l)" -eq 500

# --- -n exactness: exactly N out, the rest still on the broker ---------------------------------------
make_channel $b1_http exact e
fill $b1_tcp exact 100
timeout 20 nsq-tail -q -t exact -c e --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 7 --max-in-flight 50 >"$T/exact1.out"
check "-n 7: exactly 7 lines" test "$(wc -l <"$T/exact1.out")" -eq 7
check "-n 7: nothing left in flight" wait_for 5 chan_is $b1_http exact e in_flight_count 0
check "-n 7: 93 still on the broker" wait_for 5 chan_is $b1_http exact e depth 93
check "-n 7: the broker took nothing back" nothing_taken_back $b1_http exact e
timeout 20 nsq-tail -q -t exact -c e --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 93 >"$T/exact2.out"
check "the other 93 go to the next consumer" test "$(wc -l <"$T/exact2.out")" -eq 93
check "7 + 93 = the 100, none twice" test "$(cat "$T/exact1.out" "$T/exact2.out" | sort -u | wc -l)" -eq 100

# --- a reader that exits early loses nothing it did not process (issue 15): a line is FINished only
# once the reader read it and then read again, or stayed --reader-grace; the rest is requeued (at
# least once: a line the reader printed may come again). 1000 published each time.
# reader_case NAME MIN_LEFT READER: nsq-tail | READER; then the channel holds at least MIN_LEFT of
# the 1000, nothing in flight, nothing taken back by the broker, and depth + the lines FINished
# (those the reader printed at most) add up to 1000.
reader_case() {
  local name=$1 min=$2 depth fin
  shift 2
  make_channel $b1_http $name c
  fill $b1_tcp $name 1000
  timeout 20 nsq-tail -t $name -c c --nsqd-tcp-address 127.0.0.1:$b1_tcp --msg-timeout 60s 2>"$T/$name.err" |
    "$@" >"$T/$name.out"
  status=${PIPESTATUS[0]}
  expect "$name: nsq-tail exits 0 when its reader leaves" 0
  check "$name: nothing left in flight" wait_for 5 settled $b1_http $name c
  check "$name: the broker took nothing back" nothing_taken_back $b1_http $name c
  depth=$(chan $b1_http $name c depth)
  fin=$(sed -n 's/.* \([0-9]*\) finished.*/\1/p' "$T/$name.err")
  check "$name: at least $min of 1000 back on the broker (depth $depth)" test "$depth" -ge "$min"
  check "$name: depth $depth + $fin FINished = 1000" test "$((depth + ${fin:-0}))" -eq 1000
  check "$name: FINished only what the reader printed" test "${fin:-0}" -le "$(wc -l <"$T/$name.out")"
}
reader_case head1 999 head -1
reader_case head5 995 head -n 5
reader_case pyreadline 999 python3 -c 'import sys; print(sys.stdin.readline(), end="")'
reader_case readloop 995 sh -c 'for i in 1 2 3 4 5; do read -r l; echo "$l"; done'
# -n 7 through a pipe: exactly 7 FINished, the other 993 handed back.
make_channel $b1_http pipen c
fill $b1_tcp pipen 1000
timeout 20 nsq-tail -q -t pipen -c c --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 7 | cat >"$T/pipen.out"
status=${PIPESTATUS[0]}
expect "-n 7 | cat: 0" 0
check "-n 7 | cat: 7 lines" test "$(wc -l <"$T/pipen.out")" -eq 7
check "-n 7 | cat: 993 back, nothing in flight" wait_for 5 eval 'settled $b1_http pipen c && chan_is $b1_http pipen c depth 993'
check "-n 7 | cat: the broker took nothing back" nothing_taken_back $b1_http pipen c
# What was handed back goes to the next consumer at once (msg-timeout is 60 s), none lost.
timeout 5 nsq-tail -q -t head1 -c c --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 1000 >"$T/head1.rest"
check "after head -1: all 1000 to the next consumer within 5 s" test "$(sort -u "$T/head1.rest" | wc -l)" -eq 1000

# --- a reader that stalls longer than the message timeout: TOUCH, no redelivery -------------------
make_channel $b1_http stall s
fill $b1_tcp stall 20
timeout 30 nsq-tail -q -t stall -c s --nsqd-tcp-address 127.0.0.1:$b1_tcp --msg-timeout 2s -n 20 --format envelope |
  (sleep 5; cat) >"$T/stall.out"
status=${PIPESTATUS[0]}
expect "stalled reader: nsq-tail exits 0 once it read" 0
check "20 envelopes" test "$(wc -l <"$T/stall.out")" -eq 20
check "every one delivered once (attempts 1)" test "$(grep -c '"attempts":1,' "$T/stall.out")" -eq 20
check "nothing timed out" chan_is $b1_http stall s timeout_count 0
check "stalled reader: the broker took nothing back" nothing_taken_back $b1_http stall s

# --- SIGTERM: what sits unread in the pipe is requeued at once -------------------------------------
make_channel $b1_http term t
fill $b1_tcp term 100
mkfifo "$T/fifo"
(exec sleep 60 <"$T/fifo") &
reader=$!
daemon_pids+=($reader)
nsq-tail -q -t term -c t --nsqd-tcp-address 127.0.0.1:$b1_tcp --msg-timeout 60s >"$T/fifo" &
tail_pid=$!
daemon_pids+=($tail_pid)
check "100 in flight, unread in the pipe" wait_for 10 chan_is $b1_http term t in_flight_count 100
kill -TERM $tail_pid
wait $tail_pid
status=$?
expect "SIGTERM: exits 0" 0
kill $reader 2>/dev/null
check "SIGTERM: all 100 back in the queue at once" wait_for 2 chan_is $b1_http term t depth 100
check "SIGTERM: the broker took nothing back (REQ before CLS)" nothing_taken_back $b1_http term t
timeout 5 nsq-tail -q -t term -c t --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 100 >"$T/term.out"
check "the next consumer gets all 100" test "$(sort -u "$T/term.out" | wc -l)" -eq 100

# --- default channel: ephemeral ---------------------------------------------------------------
nsq-tail -t eph --nsqd-tcp-address 127.0.0.1:$b1_tcp >/dev/null 2>"$T/eph.err" &
eph=$!
daemon_pids+=($eph)
check "an ephemeral tail<digits>#ephemeral channel" wait_for 10 sh -c \
  "curl -s 'http://127.0.0.1:$b1_http/stats?format=json&topic=eph' | grep -Eq '\"channel_name\":\"tail[0-9]{6}#ephemeral\"'"
kill -TERM $eph; wait $eph

# --- a flood of errors from a broker: nsq-tail backs off (RDY 0 for a while), then resumes -------------
# The errors are real: 200 messages wait unread in the pipe, the channel is emptied over HTTP (their
# ids leave the broker's in-flight set), then the reader reads them and each FIN gets E_FIN_FAILED.
make_channel $b1_http flood f
fill $b1_tcp flood 200
mkfifo "$T/flood.fifo"
(while [ ! -e "$T/flood.go" ]; do sleep 0.05; done; exec cat) <"$T/flood.fifo" >"$T/flood.out" &
daemon_pids+=($!)
nsq-tail -t flood -c f --nsqd-tcp-address 127.0.0.1:$b1_tcp --max-in-flight 200 --msg-timeout 60s \
  >"$T/flood.fifo" 2>"$T/flood.err" &
flood=$!
daemon_pids+=($flood)
check "200 in flight, unread in the pipe" wait_for 10 chan_is $b1_http flood f in_flight_count 200
curl -s -X POST "http://127.0.0.1:$b1_http/channel/empty?topic=flood&channel=f" >/dev/null
check "emptied: nothing in flight on the broker" wait_for 5 chan_is $b1_http flood f in_flight_count 0
touch "$T/flood.go"
check "200 E_FIN_FAILED within a second: nsq-tail pauses that broker" \
  wait_for 10 grep -q "errors within a second; pausing for 250 ms" "$T/flood.err"
check "each error logged with the broker's text" grep -q "E_FIN_FAILED" "$T/flood.err"
fill $b1_tcp flood 50
check "after the pause, messages flow again (50 more)" wait_for 10 sh -c "[ \$(wc -l <'$T/flood.out') -eq 250 ]"
check "still connected (errors are not fatal)" chan_is $b1_http flood f client_count 1
kill -TERM $flood
wait $flood
status=$?
expect "SIGTERM after the flood: exits 0" 0

# --- a broker that floods errors, then breaks every connection with a malformed frame (a stand-in:
# no real broker does this on purpose): the reconnect backoff must hold (it resets only after a
# healthy connection), and the error lines are rate-limited and summarised.
hostile=$(free_port)
node -e '
  const fs = require("fs"), [port, file] = process.argv.slice(1);
  const frame = (type, text) => { const d = Buffer.from(text), h = Buffer.alloc(8);
    h.writeUInt32BE(d.length + 4, 0); h.writeUInt32BE(type, 4); return Buffer.concat([h, d]); };
  let n = 0;
  require("net").createServer((s) => {
    fs.writeFileSync(file, String(++n));
    let got = "", state = 0;
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (state === 0 && got.includes("IDENTIFY\n") && got.length >= got.indexOf("IDENTIFY\n") + 13) {
        state = 1; s.write(frame(0, "OK"));
      }
      if (state === 1 && got.includes("SUB ")) {
        state = 2;
        const flood = []; for (let i = 0; i < 1000; i++) flood.push(frame(1, "E_INVALID flooding " + i));
        s.write(Buffer.concat([frame(0, "OK"), ...flood, Buffer.from([0, 0, 0, 2, 0, 0])]));  // size 2: malformed
      }
    });
    s.on("error", () => {});
  }).listen(Number(port), "127.0.0.1");' $hostile "$T/hostile.count" &
daemon_pids+=($!)
wait_for 10 sh -c "(exec 3<>/dev/tcp/127.0.0.1/$hostile) 2>/dev/null"
rm -f "$T/hostile.count"
timeout -s TERM 4 nsq-tail -t h -c c --nsqd-tcp-address 127.0.0.1:$hostile >/dev/null 2>"$T/hostile.err"
conns=$(cat "$T/hostile.count" 2>/dev/null || echo 0)
lines=$(wc -l <"$T/hostile.err")
check "hostile broker: reconnects back off (250 ms doubling: <= 4 connections in 4 s, got $conns)" \
  test "$conns" -ge 2 -a "$conns" -le 4
check "hostile broker: the log stays short (got $lines lines for ~3000 errors)" test "$lines" -le 40
check "hostile broker: the errors are summarised" grep -q "more errors not logged" "$T/hostile.err"
check "hostile broker: the reason is logged" grep -q "malformed frame" "$T/hostile.err"

# --- broker restart: reconnect with backoff --------------------------------------------------------
port=$(free_port)
FIXED_TCP=$port start_broker b2
nsq-tail -q -t again -c r --nsqd-tcp-address 127.0.0.1:$port -n 2 >"$T/again.out" &
again=$!
daemon_pids+=($again)
make_channel $b2_http again r
check "subscribed" wait_for 10 sh -c "curl -s 'http://127.0.0.1:$b2_http/stats?format=json&topic=again' | grep -q '\"client_count\":1'"
echo '{"before":1}' | nsq-pub -q -t again --nsqd-tcp-address 127.0.0.1:$port
kill -9 $b2_pid; wait $b2_pid 2>/dev/null
FIXED_TCP=$port start_broker b2
make_channel $b2_http again r
check "reconnected to the restarted broker" wait_for 15 sh -c "curl -s 'http://127.0.0.1:$b2_http/stats?format=json&topic=again' | grep -q '\"client_count\":1'"
echo '{"after":1}' | nsq-pub -q -t again --nsqd-tcp-address 127.0.0.1:$port
wait_for 10 sh -c "! kill -0 $again 2>/dev/null"
check "both messages arrived" test "$(wc -l <"$T/again.out")" -eq 2

# --- lookupd discovery with the real lookupd: brokers registered with it, one added later ---------
lk_tcp=$(free_port)
lk_http=$(free_port)
lookupd --tcp-address 127.0.0.1:$lk_tcp --http-address 127.0.0.1:$lk_http -q 2>"$T/lookupd.log" &
daemon_pids+=($!)
check "lookupd answers /ping" wait_for 20 sh -c "curl -sf http://127.0.0.1:$lk_http/ping >/dev/null"
start_broker b6 --lookupd-tcp-address 127.0.0.1:$lk_tcp
nsq-tail -q -t viald -c v --lookupd-http-address 127.0.0.1:$lk_http --lookupd-poll-interval 200ms -n 3 >"$T/viald.out" &
vpid=$!
daemon_pids+=($vpid)
echo '{"via":6}' | nsq-pub -q -t viald --nsqd-tcp-address 127.0.0.1:$b6_tcp
check "the first broker found through lookupd" wait_for 10 sh -c "[ \$(wc -l <'$T/viald.out') -ge 1 ]"
start_broker b7 --lookupd-tcp-address 127.0.0.1:$lk_tcp
printf '{"via":7}\n{"via":7,"second":1}\n' | nsq-pub -q -t viald --nsqd-tcp-address 127.0.0.1:$b7_tcp
check "a broker registered later is connected within the poll interval" wait_for 10 sh -c "! kill -0 $vpid 2>/dev/null"
check "3 messages from the two brokers" test "$(sort -u "$T/viald.out" | wc -l)" -eq 3

# --- lookupd discovery (a stand-in lookupd: nsq's /lookup answer, 404 until the topic exists) --------
lk=$(free_port)
node -e '
  const fs = require("fs"), [port, file] = process.argv.slice(1);
  require("http").createServer((q, r) => {
    if (!q.url.startsWith("/lookup?topic=found")) { r.writeHead(404); return r.end("{\"message\":\"TOPIC_NOT_FOUND\"}"); }
    if (!fs.existsSync(file)) { r.writeHead(404); return r.end("{\"message\":\"TOPIC_NOT_FOUND\"}"); }
    const producers = fs.readFileSync(file, "utf8").trim().split("\n").map((a) => {
      const [h, p] = a.split(":"); return { broadcast_address: h, hostname: h, tcp_port: Number(p), http_port: 0 };
    });
    r.writeHead(200, { "content-type": "application/json" });
    r.end(JSON.stringify({ channels: [], producers }));
  }).listen(Number(port), "127.0.0.1");' $lk "$T/producers" &
daemon_pids+=($!)
wait_for 10 sh -c "curl -s http://127.0.0.1:$lk/ping >/dev/null"
start_broker b3
start_broker b4
nsq-tail -q -t found -c l --lookupd-http-address 127.0.0.1:$lk --lookupd-poll-interval 200ms -n 4 >"$T/lookup.out" &
lpid=$!
daemon_pids+=($lpid)
make_channel $b3_http found l
make_channel $b4_http found l
echo '{"b":3}' | nsq-pub -q -t found --nsqd-tcp-address 127.0.0.1:$b3_tcp
echo '{"b":4}' | nsq-pub -q -t found --nsqd-tcp-address 127.0.0.1:$b4_tcp
printf '127.0.0.1:%s\n127.0.0.1:%s\n' $b3_tcp $b4_tcp >"$T/producers"
check "both brokers found through lookupd" wait_for 10 sh -c "[ \$(wc -l <'$T/lookup.out') -ge 2 ]"
printf '127.0.0.1:%s\n' $b3_tcp >"$T/producers"
check "a broker no longer listed is closed" wait_for 10 chan_is $b4_http found l client_count 0
echo '{"b":3,"again":1}' | nsq-pub -q -t found --nsqd-tcp-address 127.0.0.1:$b3_tcp
echo '{"b":4,"again":1}' | nsq-pub -q -t found --nsqd-tcp-address 127.0.0.1:$b4_tcp
check "the listed one still delivers" wait_for 10 sh -c "[ \$(wc -l <'$T/lookup.out') -ge 3 ]"
check "the departed one does not" chan_is $b4_http found l depth 1
check "the departed one took nothing back" nothing_taken_back $b4_http found l
kill -TERM $lpid; wait $lpid

# --- archive mode: files complete, rotated, renamed; FIN after fsync --------------------------------
make_channel $b1_http arch a
fill $b1_tcp arch 1000
timeout 20 nsq-tail -q -t arch -c a --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 1000 --output-dir "$T/arch" \
  --rotate-size 3000 --filename-format '<TOPIC>.test<REV>.log'
status=$?
expect "archive -n 1000: 0" 0
check "rotated into several files" test "$(ls "$T/arch" | wc -l)" -ge 3
check "no temporary file left" test -z "$(ls "$T/arch" | grep '\.tmp$')"
check "<REV> numbers the files" test -f "$T/arch/arch.test-1.log"
check "every line once, complete" test "$(cat "$T"/arch/* | sort -u | wc -l)" -eq 1000 -a "$(cat "$T"/arch/* | wc -l)" -eq 1000
check "archive: channel drained" wait_for 5 chan_is $b1_http arch a depth 0
make_channel $b1_http archgz g
fill $b1_tcp archgz 500
timeout 20 nsq-tail -q -t archgz -c g --nsqd-tcp-address 127.0.0.1:$b1_tcp -n 500 --output-dir "$T/gz" --gzip
check "--gzip: one .gz file" test "$(ls "$T/gz" | grep -c '\.log\.gz$')" -eq 1
check "--gzip: its 500 lines" test "$(zcat "$T"/gz/*.gz | sort -u | wc -l)" -eq 500
# A full disk: the file being written is torn; it must keep its temporary name (never renamed as
# complete), the error is reported (74), and what was not fsynced goes back to the broker.
mkdir -p "$T/full"
full_fs=
if mount -t tmpfs -o size=48k tmpfs "$T/full" 2>/dev/null; then
  full_fs=tmpfs
elif command -v mkfs.ext4 >/dev/null && head -c 1M /dev/zero >"$T/full.img" && mkfs.ext4 -q -F "$T/full.img" 2>/dev/null &&
  mount -o loop "$T/full.img" "$T/full" 2>/dev/null; then
  full_fs=ext4
fi
if [ -n "$full_fs" ]; then
  trap 'umount "$T/full" 2>/dev/null; for p in "${daemon_pids[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$T"' EXIT
  make_channel $b1_http archfull c
  seq 1 3000 | sed 's/.*/{"n":&,"pad":"................................................................"}/' |
    nsq-pub -q -t archfull --nsqd-tcp-address 127.0.0.1:$b1_tcp
  run timeout 20 nsq-tail -t archfull -c c --nsqd-tcp-address 127.0.0.1:$b1_tcp --output-dir "$T/full/a" \
    --rotate-size 10000 --filename-format '<TOPIC><REV>.log' --sync-interval 50ms
  expect "archive on a full disk ($full_fs): exit 74" 74
  expect_err "says the disk is full" "No space left on device"
  check "the torn file keeps its temporary name" test -n "$(ls "$T/full/a" | grep '\.tmp$')"
  complete_ok=1
  for f in "$T"/full/a/*.log; do
    [ -e "$f" ] || continue
    [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" = '\n' ] && node -e '
      require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").forEach((l) => JSON.parse(l));' "$f" ||
      complete_ok=0
  done
  check "every file under its final name is complete (whole JSON lines)" test $complete_ok -eq 1
  check "full disk: nothing left in flight" wait_for 5 settled $b1_http archfull c
  check "full disk: the broker took nothing back" nothing_taken_back $b1_http archfull c
  fin=$(cat "$T"/full/a/* | grep -c '}$')
  depth=$(chan $b1_http archfull c depth)
  check "full disk: depth $depth + whole lines in the files $fin >= 3000 (fsynced ones FINished, the rest back)" \
    test $((depth + fin)) -ge 3000
  umount "$T/full"
else
  echo "SKIP: archive on a full disk: neither a tmpfs nor a loop-mounted ext4 image could be mounted (needs root)"
fi
# kill -9 mid-stream loses nothing that was FINished
start_broker b5 --mem-queue-size 300000
make_channel $b5_http archk k
fill $b5_tcp archk 200000
nsq-tail -q -t archk -c k --nsqd-tcp-address 127.0.0.1:$b5_tcp --output-dir "$T/kill" --msg-timeout 1s \
  --max-in-flight 100 --sync-interval 100ms &
kpid=$!
daemon_pids+=($kpid)
wait_for 30 sh -c "[ \$(curl -s 'http://127.0.0.1:$b5_http/stats?format=json&topic=archk' | grep -o '\"finish_count\":[0-9]*' | head -1 | cut -d: -f2) -ge 20000 ]"
kill -9 $kpid; wait $kpid 2>/dev/null
nsq-tail -q -t archk -c k --nsqd-tcp-address 127.0.0.1:$b5_tcp --max-in-flight 2500 >"$T/kill.rest" &
rpid=$!
daemon_pids+=($rpid)
wait_for 30 sh -c "[ \$(wc -l <'$T/kill.rest') -gt 0 ]"
drained() { chan_is $1 $2 $3 depth 0 && chan_is $1 $2 $3 in_flight_count 0; }
check "the rest redelivered" wait_for 30 drained $b5_http archk k
check "kill -9 leaves messages in flight: the broker counts what it took back" \
  test "$(chan $b5_http archk k disconnect_requeue_count)" -gt 0
kill -TERM $rpid; wait $rpid
check "killed mid-stream (some in the archive, some redelivered)" test "$(cat "$T"/kill/* | wc -l)" -lt 200000
check "archive + redelivered = all 200,000" test "$(cat "$T"/kill/* "$T/kill.rest" | sort -u | wc -l)" -eq 200000

finish
