#!/usr/bin/env bash
# lookupd, the real binary: flags and exit codes, every HTTP route with nsqlookupd's statuses and
# JSON, every TCP command and error (brokers played by node, lookupd_tcp_client.mjs), tombstones,
# inactive producers, removal on disconnect, bad clients beside a good one, --config, SIGTERM.
source "$(dirname "$0")/lib.sh"
CLIENT=$PIPEKIT_SRC/tests/cli/lookupd_tcp_client.mjs

# start_lookupd NAME [FLAGS...]: on free ports; sets ${NAME}_PID, TCP_PORT, HTTP_PORT, URL.
start_lookupd() {
  local name=$1 deadline
  shift
  TCP_PORT=$(free_port)
  HTTP_PORT=$(free_port)
  URL=http://127.0.0.1:$HTTP_PORT
  lookupd --tcp-address 127.0.0.1:$TCP_PORT --http-address 127.0.0.1:$HTTP_PORT "$@" 2>"$T/$name.log" &
  printf -v "${name}_PID" %s $!
  PIDS="${PIDS:-} $!"
  deadline=$((SECONDS + 20))
  until curl -sf "$URL/ping" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "FAIL: $name did not answer /ping"; cat "$T/$name.log"; exit 1; }
    sleep 0.05
  done
}
trap 'for p in ${PIDS:-}; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT

# http METHOD PATH: sets $code, $body, $ctype.
http() {
  local h
  h=$(curl -s -X "$1" -o "$T/body" -D "$T/headers" -w '%{http_code}' "$URL$2")
  code=$h
  body=$(cat "$T/body")
  ctype=$(grep -i '^content-type:' "$T/headers" | tr -d '\r' | cut -d' ' -f2-)
}
# expect_http NAME METHOD PATH CODE BODY
expect_http() {
  http "$2" "$3"
  if [ "$code" = "$4" ] && [ "$body" = "$5" ]; then ok; else
    status=$code out=$body err=""
    bad "$1" "want $4 $5"
  fi
}
# wait_for NAME PATH BODY: polls GET PATH (deadline 10 s) until it answers BODY.
wait_for() {
  local deadline=$((SECONDS + 10))
  while :; do
    http GET "$2"
    [ "$body" = "$3" ] && { ok; return; }
    [ $SECONDS -lt $deadline ] || { status=$code out=$body err=""; bad "$1" "want $3"; return; }
    sleep 0.05
  done
}

# Brokers: broker_open NAME (connects, nothing sent), tell NAME LINE (no answer expected),
# ask NAME LINE (sets $answer to the answer line), broker_close NAME.
declare -A B_FD B_N B_PID
broker_open() {
  local name=$1 fd
  rm -f "$T/$name.in"
  mkfifo "$T/$name.in"
  # Made here, not by the background job's redirection: that happens only after the job opens
  # the FIFO, so ask() could look for the file first and read "no such file" as an answer.
  : >"$T/$name.out"
  node "$CLIENT" "$TCP_PORT" <"$T/$name.in" >"$T/$name.out" 2>&1 &
  B_PID[$name]=$!
  PIDS="$PIDS $!"
  exec {fd}>"$T/$name.in"
  B_FD[$name]=$fd
  B_N[$name]=0
}
tell() { echo "$2" >&"${B_FD[$1]}"; }
ask() {
  local name=$1 deadline=$((SECONDS + 10))
  echo "$2" >&"${B_FD[$name]}"
  B_N[$name]=$((B_N[$name] + 1))
  while [ "$(wc -l <"$T/$name.out")" -lt "${B_N[$name]}" ]; do
    [ $SECONDS -lt $deadline ] || { answer="<no answer>"; return; }
    sleep 0.02
  done
  answer=$(sed -n "${B_N[$name]}p" "$T/$name.out")
}
broker_close() {
  echo close >&"${B_FD[$1]}" 2>/dev/null
  exec {B_FD[$1]}>&-
  wait "${B_PID[$1]}" 2>/dev/null
}
# expect_answer NAME WANT: the last $answer is WANT.
expect_answer() {
  if [ "$answer" = "$2" ]; then ok; else status="" out=$answer err=""; bad "$1" "want answer: $2"; fi
}
# expect_error NAME LINE... : a fresh connection sends the lines (the last one asked), gets
# $want_error and is then closed.
expect_error() {
  local name=$1 want=$2
  shift 2
  broker_open e
  while [ $# -gt 1 ]; do
    case $1 in identify\ * | cmd\ *) ask e "$1" ;; *) tell e "$1" ;; esac
    shift
  done
  ask e "$1"
  expect_answer "$name" "$want"
  ask e read
  expect_answer "$name: then closed" "<closed>"
  broker_close e
}
ID1='{"broadcast_address":"host1","tcp_port":4150,"http_port":4151,"version":"1.3.0","hostname":"h1"}'
ID2='{"broadcast_address":"host2","tcp_port":5150,"http_port":5151,"version":"1.3.0","hostname":"h2"}'

# --- flags and exit codes ------------------------------------------------------------------
run lookupd --help
expect "--help exits 0" 0
case $out in *--inactive-producer-timeout*) ok ;; *) bad "--help lists the flags" ;; esac
run lookupd --version
expect "--version exits 0" 0
case $out in "lookupd "*) ok ;; *) bad "--version names the program" ;; esac
run lookupd --bogus
expect "an unknown flag is a usage error" 64
run lookupd --inactive-producer-timeout soon
expect "a bad duration is a usage error" 64
expect_err "the bad duration is named" "--inactive-producer-timeout"
run lookupd --tcp-address nowhere
expect "a bad listen address is a usage error" 64
run lookupd --config "$T/missing.cfg"
expect "a missing --config file is a configuration error" 78
# A file that is not TOML, or a value no flag takes, was ignored in silence: now 78, at its line.
printf '# lookupd\ntcp_address: 127.0.0.1:4160\n' >"$T/yaml.cfg"
run lookupd --config "$T/yaml.cfg"
expect "a --config that is not TOML is a configuration error" 78
expect_err "names the file, line and reason" "lookupd: --config $T/yaml.cfg:2:"
printf 'tcp_address = "127.0.0.1:0"\nhttp_address = ["127.0.0.1:0", "127.0.0.1:0"]\n' >"$T/array.cfg"
run lookupd --config "$T/array.cfg"
expect "an array for a one-value flag in --config" 78
expect_err "says so at its line" "$T/array.cfg:2: http_address: takes one value, not an array"
printf 'tcp_address = "127.0.0.1:0"\n\ntombstone_lifetime = "soon"\n' >"$T/type.cfg"
run lookupd --config "$T/type.cfg"
expect "a value the flag refuses, from --config" 78
expect_err "names the file and the line of the key" "lookupd: --config $T/type.cfg:3: --tombstone-lifetime"
run lookupd --config "$T/type.cfg" --tombstone-lifetime soon
expect "the same value on the command line is a usage error" 64
busy=$(free_port)
node -e 'require("net").createServer().listen(Number(process.argv[1]),"127.0.0.1",()=>console.log("up"))' "$busy" >"$T/busy" &
busy_pid=$!
PIDS="${PIDS:-} $busy_pid"
until [ -s "$T/busy" ]; do sleep 0.05; done
run lookupd --tcp-address 127.0.0.1:$busy --http-address 127.0.0.1:0
expect "an address in use is unavailable" 69
kill $busy_pid
wait $busy_pid 2>/dev/null

# --- HTTP routes with nothing registered ---------------------------------------------------
start_lookupd main --tombstone-lifetime 3s --broadcast-address lookupd.example
http GET /ping
check "/ping answers OK as text" test "$code $body" = "200 OK"
check "/ping is text/plain" test "${ctype%%;*}" = text/plain
grep -qi '^X-NSQ-Content-Type: nsq; version=1.0' "$T/headers" && ok || bad "responses carry X-NSQ-Content-Type"
http GET /info
# "version" is the nsqlookupd release answered as (nsqadmin parses it as semver), pipekit's own beside it.
case $body in '{"version":"1.3.0","pipekit_version":"'*'"}') ok ;; *) bad "/info: nsqlookupd's version, then pipekit's" "$body" ;; esac
check "/info is JSON" test "$ctype" = "application/json; charset=utf-8"
expect_http "/topics empty" GET /topics 200 '{"topics":[]}'
expect_http "/lookup without topic" GET /lookup 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/lookup of an unknown topic" GET '/lookup?topic=nope' 404 '{"message":"TOPIC_NOT_FOUND"}'
expect_http "/channels without topic" GET /channels 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/channels of an unknown topic" GET '/channels?topic=nope' 200 '{"channels":[]}'
expect_http "/nodes empty" GET /nodes 200 '{"producers":[]}'
expect_http "/debug empty" GET /debug 200 '{}'
expect_http "an unknown path" GET /nope 404 '{"message":"NOT_FOUND"}'
expect_http "GET on a POST route" GET '/topic/create?topic=a' 405 '{"message":"METHOD_NOT_ALLOWED"}'
expect_http "POST on a GET route" POST /topics 405 '{"message":"METHOD_NOT_ALLOWED"}'

# --- creating, deleting by hand ------------------------------------------------------------
expect_http "/topic/create without topic" POST /topic/create 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/topic/create of a bad name" POST '/topic/create?topic=a*b' 400 '{"message":"INVALID_ARG_TOPIC"}'
expect_http "/topic/create" POST '/topic/create?topic=made' 200 ''
expect_http "a created topic is listed" GET /topics 200 '{"topics":["made"]}'
expect_http "a created topic has no producers" GET '/lookup?topic=made' 200 '{"channels":[],"producers":[]}'
expect_http "/channel/create without topic" POST '/channel/create?channel=c' 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/channel/create of a bad topic" POST '/channel/create?topic=a%20b&channel=c' 400 '{"message":"INVALID_ARG_TOPIC"}'
expect_http "/channel/create without channel" POST '/channel/create?topic=made' 400 '{"message":"MISSING_ARG_CHANNEL"}'
expect_http "/channel/create of a bad channel" POST '/channel/create?topic=made&channel=c/d' 400 '{"message":"INVALID_ARG_CHANNEL"}'
expect_http "/channel/create" POST '/channel/create?topic=made2&channel=ch%23ephemeral' 200 ''
expect_http "the channel and its topic are listed" GET '/channels?topic=made2' 200 '{"channels":["ch#ephemeral"]}'
expect_http "/topics lists both" GET /topics 200 '{"topics":["made","made2"]}'
expect_http "/channel/delete of an unknown channel" POST '/channel/delete?topic=made2&channel=x' 404 '{"message":"CHANNEL_NOT_FOUND"}'
expect_http "/channel/delete without channel" POST '/channel/delete?topic=made2' 400 '{"message":"MISSING_ARG_CHANNEL"}'
expect_http "/channel/delete" POST '/channel/delete?topic=made2&channel=ch%23ephemeral' 200 ''
expect_http "the deleted channel is gone" GET '/channels?topic=made2' 200 '{"channels":[]}'
expect_http "/topic/delete without topic" POST /topic/delete 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/topic/delete" POST '/topic/delete?topic=made2' 200 ''
expect_http "/topic/delete of an unknown topic is fine" POST '/topic/delete?topic=never' 200 ''
expect_http "the deleted topic is gone" GET /topics 200 '{"topics":["made"]}'
expect_http "/topic/tombstone without topic" POST '/topic/tombstone?node=a:1' 400 '{"message":"MISSING_ARG_TOPIC"}'
expect_http "/topic/tombstone without node" POST '/topic/tombstone?topic=made' 400 '{"message":"MISSING_ARG_NODE"}'

# --- brokers over TCP ----------------------------------------------------------------------
broker_open b1
tell b1 magic
ask b1 "cmd PING"
expect_answer "PING before IDENTIFY" OK
ask b1 "identify $ID1"
want_identify=$(printf '{"broadcast_address":"lookupd.example","http_port":%s,"tcp_port":%s}' "$HTTP_PORT" "$TCP_PORT")
got_identify=$(node -e 'const a=JSON.parse(process.argv[1]);console.log(JSON.stringify({broadcast_address:a.broadcast_address,http_port:a.http_port,tcp_port:a.tcp_port}), typeof a.version, typeof a.hostname)' "$answer")
check "IDENTIFY answers lookupd's ports, broadcast address, version and hostname" test "$got_identify" = "$want_identify string string"
ask b1 "cmd REGISTER events"
expect_answer "REGISTER topic" OK
ask b1 "cmd REGISTER events push"
expect_answer "REGISTER topic channel" OK
ask b1 "cmd PING"
expect_answer "PING after IDENTIFY" OK
http GET '/lookup?topic=events'
want='{"channels":["push"],"producers":[{"remote_address":"127.0.0.1:PORT","hostname":"h1","broadcast_address":"host1","tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}'
check "/lookup has the channel and the producer" test "$(sed -E 's/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/' <<<"$body")" = "$want"
expect_http "/channels" GET '/channels?topic=events' 200 '{"channels":["push"]}'
expect_http "/topics" GET /topics 200 '{"topics":["events","made"]}'
http GET /nodes
want='{"producers":[{"remote_address":"127.0.0.1:PORT","hostname":"h1","broadcast_address":"host1","tcp_port":4150,"http_port":4151,"version":"1.3.0","tombstones":[false],"topics":["events"]}]}'
check "/nodes has the broker with its topics and tombstones" test "$(sed -E 's/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/' <<<"$body")" = "$want"
http GET /debug
got=$(node -e 'const d=JSON.parse(process.argv[1]);console.log(Object.keys(d).sort().join(" "), d["topic:events:"][0].broadcast_address, d["topic:events:"][0].tombstoned)' "$body")
check "/debug lists every registration" test "$got" = "channel:events:push client:: topic:events: host1 false"
http GET /metrics
case $body in *'lookupd_producers 1'*'lookupd_topics 2'*'lookupd_tcp_commands_total{command="REGISTER"} 2'*) ok ;;
  *) status=$code out=$body err=""; bad "/metrics in the Prometheus format" ;; esac
check "/metrics is Prometheus text" test "$ctype" = "text/plain; version=0.0.4; charset=utf-8"

# Tombstones: a second broker; host1 tombstoned is out of /lookup for 3 s, not out of /nodes.
broker_open b2
tell b2 magic
ask b2 "identify $ID2"
ask b2 "cmd REGISTER events"
expect_answer "a second broker registers" OK
expect_http "/topic/tombstone" POST '/topic/tombstone?topic=events&node=host1:4151' 200 ''
http GET '/lookup?topic=events'
got=$(node -e 'console.log(JSON.parse(process.argv[1]).producers.map(p=>p.broadcast_address).sort().join(","))' "$body")
check "a tombstoned producer is out of /lookup" test "$got" = host2
http GET /nodes
got=$(node -e 'console.log(JSON.parse(process.argv[1]).producers.map(p=>p.broadcast_address+":"+p.tombstones).sort().join(","))' "$body")
check "/nodes shows the tombstone" test "$got" = "host1:true,host2:false"
deadline=$((SECONDS + 10))  # polled until host1 is back: the 3 s lifetime, with room for a slow machine
while :; do
  http GET '/lookup?topic=events'
  got=$(node -e 'console.log(JSON.parse(process.argv[1]).producers.map(p=>p.broadcast_address).sort().join(","))' "$body")
  [ "$got" = host1,host2 ] || [ $SECONDS -ge $deadline ] && break
  sleep 0.1
done
check "the tombstone ends after --tombstone-lifetime" test "$got" = host1,host2

# UNREGISTER: a channel, then a topic; what no broker has is no longer listed.
ask b1 "cmd UNREGISTER events push"
expect_answer "UNREGISTER topic channel" OK
expect_http "an unregistered channel is gone" GET '/channels?topic=events' 200 '{"channels":[]}'
ask b1 "cmd UNREGISTER events"
expect_answer "UNREGISTER topic" OK
http GET '/lookup?topic=events'
got=$(node -e 'console.log(JSON.parse(process.argv[1]).producers.map(p=>p.broadcast_address).sort().join(","))' "$body")
check "UNREGISTER takes one producer out" test "$got" = host2
ask b2 "cmd UNREGISTER events"
expect_http "a topic no broker has is gone" GET '/lookup?topic=events' 404 '{"message":"TOPIC_NOT_FOUND"}'

# A broker that goes away is removed at once: closed cleanly, or killed.
ask b1 "cmd REGISTER gone1 c"
broker_close b1
wait_for "a closed broker's topics go at once" /topics '{"topics":["made"]}'
ask b2 "cmd REGISTER gone2"
expect_http "registered" GET /topics 200 '{"topics":["gone2","made"]}'
kill -9 "${B_PID[b2]}"
wait "${B_PID[b2]}" 2>/dev/null
wait_for "a killed broker's topics go at once" /topics '{"topics":["made"]}'
exec {B_FD[b2]}>&-

# --- errors: each closes its connection, a registered broker beside them is undisturbed ---
broker_open good
tell good magic
ask good "identify $ID1"
ask good "cmd REGISTER steady"
expect_error "a wrong magic" "E_BAD_PROTOCOL" 'raw "GET / HTTP/1.1\r\n\r\n"' read
expect_error "an unknown command" "E_INVALID invalid command FOO" magic "cmd FOO bar"
expect_error "REGISTER before IDENTIFY" "E_INVALID client must IDENTIFY" magic "cmd REGISTER t"
expect_error "UNREGISTER before IDENTIFY" "E_INVALID client must IDENTIFY" magic "cmd UNREGISTER t"
expect_error "IDENTIFY twice" "E_INVALID cannot IDENTIFY again" magic "identify $ID1" "identify $ID1"
expect_error "REGISTER without a topic" "E_INVALID REGISTER insufficient number of params" magic "identify $ID1" "cmd REGISTER"
expect_error "UNREGISTER without a topic" "E_INVALID UNREGISTER insufficient number of params" magic "identify $ID1" "cmd UNREGISTER"
expect_error "a bad topic" "E_BAD_TOPIC REGISTER topic name 'a*b' is not valid" magic "identify $ID1" "cmd REGISTER a*b"
expect_error "a bad channel" "E_BAD_CHANNEL REGISTER channel name 'c:d' is not valid" magic "identify $ID1" "cmd REGISTER t c:d"
expect_error "a bad topic to UNREGISTER" "E_BAD_TOPIC UNREGISTER topic name '' is not valid" magic "identify $ID1" "cmd UNREGISTER  t"
expect_error "IDENTIFY with a body that is not JSON" "E_BAD_BODY IDENTIFY failed to decode JSON body" magic "identify {nope"
expect_error "IDENTIFY with missing fields" "E_BAD_BODY IDENTIFY missing fields" magic 'identify {"broadcast_address":"h","tcp_port":1}'
expect_error "an oversized IDENTIFY body" "E_BAD_BODY IDENTIFY invalid body size 2147483647" magic 'raw "IDENTIFY\n\u007f\u00ff\u00ff\u00ff"' read
expect_error "a line too long" "E_INVALID command line too long" magic "raw \"$(head -c 3000 /dev/zero | tr '\0' x)\"" read
ask good "cmd PING"
expect_answer "the good broker still answers" OK
expect_http "and its topic is still listed" GET '/lookup?topic=steady' 200 "$(curl -s "$URL/lookup?topic=steady")"
http GET /topics
check "after all the bad clients" test "$body" = '{"topics":["made","steady"]}'
http GET /metrics
case $body in *'lookupd_tcp_errors_total{code="E_BAD_BODY"} 3'*) ok ;; *) status=$code out=$body err=""; bad "/metrics counts errors by code" ;; esac

# --- SIGTERM: exit 0 with a broker connected ----------------------------------------------
kill -TERM "$main_PID"
wait "$main_PID"
status=$?
check "SIGTERM stops lookupd with status 0" test "$status" = 0
grep -q "stopping" "$T/main.log" && ok || bad "SIGTERM is logged"
ask good read
expect_answer "brokers are disconnected on SIGTERM" "<closed>"
broker_close good

# --- --inactive-producer-timeout -----------------------------------------------------------
start_lookupd idle --inactive-producer-timeout 2s
broker_open quiet
tell quiet magic
ask quiet "identify $ID1"
ask quiet "cmd REGISTER quiet_topic"
broker_open pinging
tell pinging magic
ask pinging "identify $ID2"
ask pinging "cmd REGISTER busy_topic"
expect_http "both listed" GET /topics 200 '{"topics":["busy_topic","quiet_topic"]}'
# Pings every 0.3 s (a loaded machine may stretch that, far from the 2 s timeout) until the quiet
# broker is gone, for at least 3 s (beyond the timeout, so the pinging one had to stay by pinging).
started=$EPOCHREALTIME deadline=$((SECONDS + 20))
while :; do
  sleep 0.3
  ask pinging "cmd PING"
  [ "$answer" = OK ] || break
  http GET /topics
  elapsed_ms=$(( (${EPOCHREALTIME/./} - ${started/./}) / 1000 ))
  { [ "$body" = '{"topics":["busy_topic"]}' ] && [ $elapsed_ms -ge 3000 ]; } || [ $SECONDS -ge $deadline ] && break
done
expect_answer "a pinging broker stays" OK
expect_http "a broker silent beyond the timeout is gone" GET /topics 200 '{"topics":["busy_topic"]}'
ask quiet read
expect_answer "and its connection is closed" "<closed>"
broker_close quiet
broker_close pinging
kill -TERM "$idle_PID"
wait "$idle_PID"

# --- --config: nsqlookupd's TOML keys ------------------------------------------------------
cp_tcp=$(free_port)
cp_http=$(free_port)
cat >"$T/lookupd.cfg" <<EOF
## nsqlookupd.cfg
tcp_address = "127.0.0.1:$cp_tcp"
http_address = "127.0.0.1:$cp_http"
broadcast_address = "from-config"
tombstone_lifetime = "45s"
log_level = "info"
EOF
lookupd --config "$T/lookupd.cfg" 2>"$T/cfg.log" &
cfg_PID=$!
PIDS="$PIDS $cfg_PID"
TCP_PORT=$cp_tcp URL=http://127.0.0.1:$cp_http
deadline=$((SECONDS + 20))
until curl -sf "$URL/ping" >/dev/null 2>&1 || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
expect_http "--config sets http_address" GET /ping 200 OK
check "a key that names no flag of lookupd is logged with its line, and lookupd starts" \
  grep -q "lookupd.cfg:6: log_level is not a flag of lookupd; ignored" "$T/cfg.log"
broker_open c
tell c magic
ask c "identify $ID1"
case $answer in *'"broadcast_address":"from-config"'*) ok ;; *) status="" out=$answer err=""; bad "--config sets tcp_address and broadcast_address" ;; esac
broker_close c
kill -TERM "$cfg_PID"
wait "$cfg_PID"

finish
