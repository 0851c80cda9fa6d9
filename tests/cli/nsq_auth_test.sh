#!/usr/bin/env bash
# AUTH end to end: nsq-broker --auth-http-address asks an auth server (a stand-in speaking nsq's
# auth HTTP protocol: no real one is packaged for Debian or npm) and enforces its answer on
# nsq-pub, nsq-tail and nsqjs (an NSQ client no one here wrote); secrets come from a file or
# NSQ_AUTH_SECRET, never argv; failures tell the client little and the log enough.
source "$(dirname "$0")/lib.sh"
consume="node $PIPEKIT_SRC/tests/tools/nsq_consume.mjs"
publish="node $PIPEKIT_SRC/tests/tools/nsq_publish.mjs"

auth=$(free_port)
node "$PIPEKIT_SRC/tests/tools/nsq_auth_standin.mjs" --port $auth --log "$T/auth.log" &
daemon_pids+=($!)
check "the auth stand-in listens" wait_for 10 sh -c "curl -s -o /dev/null http://127.0.0.1:$auth/"
DAEMON_LOG_FLAG= start_broker b --auth-http-address 127.0.0.1:$auth  # warnings in its log
tcp=127.0.0.1:$b_tcp

printf 'alice\n' >"$T/alice"
printf 'mallory\n' >"$T/mallory"
printf 'reader\n' >"$T/reader"
: >"$T/empty"
seq -f '{"n":%g}' 1 100 >"$T/lines"

# --- secrets: from a file or the environment, never argv ------------------------------------------
run nsq-pub -t orders --nsqd-tcp-address $tcp --auth-secret-file "$T/missing" "$T/lines"
expect "unreadable --auth-secret-file: 66" 66
expect_err "names the file" "$T/missing"
run nsq-pub -t orders --nsqd-tcp-address $tcp --auth-secret-file "$T/empty" "$T/lines"
expect "empty --auth-secret-file: 65" 65
# A refusal is final (no retry within the default 30 s --retry-timeout): exit 77 (EX_NOPERM) at once.
run timeout -k 5 20 nsq-pub -t orders --nsqd-tcp-address $tcp "$T/lines"
expect "no secret for a broker that requires AUTH: 77 at once" 77
expect_err "says what to give" "give the secret with --auth-secret-file or NSQ_AUTH_SECRET"
run timeout -k 5 20 nsq-tail -t orders --nsqd-tcp-address $tcp
expect "nsq-tail without a secret: 77 at once" 77

# --- allowed: publish and consume --------------------------------------------------------------------
run nsq-pub -t orders --nsqd-tcp-address $tcp --auth-secret-file "$T/alice" "$T/lines"
expect "nsq-pub --auth-secret-file publishes to an allowed topic" 0
check "the auth server was asked with nsqd's parameters" \
  grep -q '"common_name":"","remote_ip":"127.0.0.1","secret":"alice","tls":"false"' "$T/auth.log"
NSQ_AUTH_SECRET=alice timeout 20 nsq-tail -q -t orders -c all --nsqd-tcp-address $tcp -n 100 >"$T/got"
check "nsq-tail with NSQ_AUTH_SECRET gets all 100" cmp -s <(sort "$T/got") <(sort "$T/lines")

# --- not allowed ----------------------------------------------------------------------------------------
run timeout -k 5 20 nsq-pub -t payments --nsqd-tcp-address $tcp --auth-secret-file "$T/alice" --rejects "$T/rej" "$T/lines"
expect "publishing to a topic the secret does not cover: 77" 77
check "every line rejected as unauthorized, with the broker's E_UNAUTHORIZED" \
  test "$(grep -c '"code":"unauthorized","error":"127.0.0.1:[0-9]*: E_UNAUTHORIZED AUTH failed for M\?PUB on \\"payments\\"' "$T/rej")" -eq 100
run timeout -k 5 20 nsq-pub -t orders --nsqd-tcp-address $tcp --auth-secret-file "$T/mallory" --rejects "$T/rej2" "$T/lines"
expect "a refused secret: nothing published, 77 at once" 77
expect_err "the client is told only that AUTH failed" "AUTH failed: E_AUTH_FAILED AUTH failed"
check "every line rejected as auth_failed" test "$(grep -c '"code":"auth_failed","error":"not published: 127.0.0.1:[0-9]*: AUTH failed: E_AUTH_FAILED' "$T/rej2")" -eq 100
NSQ_AUTH_SECRET=mallory run timeout -k 5 20 nsq-tail -t orders --nsqd-tcp-address $tcp
expect "nsq-tail with a refused secret: 77 at once" 77
expect_err "nsq-tail says AUTH failed" "AUTH failed: E_AUTH_FAILED"
check "the broker's log says why (the auth server's 403), the secret is not in it" \
  sh -c "grep -q 'AUTH failed: failed to auth against 127.0.0.1:$auth - got response 403' '$T/b.log' && ! grep -q mallory '$T/b.log'"
NSQ_AUTH_SECRET=reader run timeout -k 5 20 nsq-tail -t orders -c other --nsqd-tcp-address $tcp -n 1
expect "subscribe-only secret, wrong channel: nsq-tail ends with 77" 77
expect_err "nsq-tail says E_UNAUTHORIZED" 'E_UNAUTHORIZED AUTH failed for SUB on "orders" "other"'

# --- nsqjs, an independent client, with authSecret --------------------------------------------------
seq -f 'js-%g' 1 20 | NSQ_AUTH_SECRET=alice $publish --nsqd $tcp --topic orders
check "nsqjs Writer with authSecret publishes" test $? -eq 0
NSQ_AUTH_SECRET=alice $consume --nsqd $tcp --topic orders --channel all --count 20 >"$T/js"
check "nsqjs Reader with authSecret gets the 20" cmp -s <(sort "$T/js") <(seq -f 'js-%g' 1 20 | sort)
seq -f 'x-%g' 1 2 | NSQ_AUTH_SECRET=mallory $publish --nsqd $tcp --topic orders 2>"$T/js.err"
check "nsqjs with a refused secret fails" test $? -ne 0

# An AUTH that expires (ttl 1 s) and is not renewed: the broker answers a PUB with E_AUTH_FAILED and
# closes; nsq-pub connects again, and the refusal of that AUTH is final (was: rejected one by one as
# broker_rejected, 65).
printf 'brief\n' >"$T/brief"
mkfifo "$T/brief.fifo"
timeout -k 5 30 nsq-pub -t orders --nsqd-tcp-address $tcp --auth-secret-file "$T/brief" --rejects "$T/brief.rej" \
  <"$T/brief.fifo" 2>"$T/brief.err" &
pub=$!
daemon_pids+=($pub)
exec 7>"$T/brief.fifo"
echo '{"first":1}' >&7
orders_count() {
  http_get $b_http "/stats?format=json" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const t = JSON.parse(s).topics.find((t) => t.topic_name === "orders");
      console.log(t ? t.message_count : 0);
    });'
}
before=$(orders_count)
check "the first line is published while the AUTH is fresh" wait_for 10 eval '[ "$(orders_count)" -gt "$before" ]'
sleep 1.2  # not synchronisation: the AUTH's ttl (1 s) runs out
echo '{"late":1}' >&7
exec 7>&-
wait $pub
status=$?
expect "an AUTH not renewed: 77" 77
check "the later line rejected as auth_failed" grep -q '"line":2,"code":"auth_failed"' "$T/brief.rej"
check "the PUB's E_AUTH_FAILED was retried, the AUTH's refusal was final" grep -q "AUTH failed: E_AUTH_FAILED AUTH failed; not retried" "$T/brief.err"
check "the broker is still up" test "$(http_get $b_http /ping)" = OK
finish
