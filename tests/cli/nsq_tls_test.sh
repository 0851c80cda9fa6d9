#!/usr/bin/env bash
# TLS between nsq-pub, nsq-broker and nsq-tail (nsqd's IDENTIFY tls_v1 upgrade), with a CA and
# certificates the openssl CLI makes here; openssl s_client as an independent TLS peer.
source "$(dirname "$0")/lib.sh"
make_tls_certs "$T/c" || { echo "FAIL: openssl could not make the test certificates"; exit 1; }
C=$T/c
lines=$'{"n":1}\n{"n":2}\n{"n":3}\n'

# --- nsq-broker's TLS flags --------------------------------------------------------------------
plain=(--tcp-address 127.0.0.1:0 --http-address "")
run nsq-broker "${plain[@]}" --tls-cert "$T/none.pem" --tls-key "$C/server.key"
expect "a missing --tls-cert file: 66" 66
expect_err "names the flag and the file" "--tls-cert $T/none.pem: cannot read"
printf 'not a certificate\n' >"$T/bad.pem"
run nsq-broker "${plain[@]}" --tls-cert "$T/bad.pem" --tls-key "$C/server.key"
expect "a --tls-cert that is no certificate: 78" 78
expect_err "names the file" "--tls-cert $T/bad.pem: not a PEM certificate"
run nsq-broker "${plain[@]}" --tls-cert "$C/server.pem" --tls-key "$C/client.key"
expect "the key of another certificate: 78" 78
expect_err "says they do not match" "does not match"
run nsq-broker "${plain[@]}" --tls-required
expect "--tls-required without a certificate: 78" 78
expect_err "says what is missing" "without TLS key and cert"
run nsq-broker "${plain[@]}" --tls-client-auth-policy require
expect "--tls-client-auth-policy without a certificate: 78" 78
run nsq-broker "${plain[@]}" --tls-required maybe
expect "--tls-required maybe: 64" 64
run nsq-broker "${plain[@]}" --tls-min-version ssl3.0
expect "--tls-min-version ssl3.0: 64" 64
printf 'tls_cert = "%s"\ntls_key = "%s"\ntls_required = "tcp-https"\n' "$C/server.pem" "$T/none.key" >"$T/broker.toml"
run nsq-broker "${plain[@]}" --config "$T/broker.toml"
expect "--config's tls_key is read: 66" 66
expect_err "names the key file" "$T/none.key"

# --- nsq-pub --tls -> nsq-broker -> nsq-tail --tls ---------------------------------------------
start_broker tls --tls-cert "$C/server.pem" --tls-key "$C/server.key"
tls_addr=127.0.0.1:$tls_tcp
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/ca.pem"
expect "nsq-pub --tls publishes (verified against the CA)" 0
run nsq-tail -t tls_rt -c ch -n 3 --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/ca.pem"
expect "nsq-tail --tls reads them" 0 "${lines%$'\n'}"
# A host name in the certificate (DNS:localhost) verifies too.
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "localhost:$tls_tcp" --tls-root-ca-file "$C/ca.pem"
expect "--tls-root-ca-file alone implies --tls; localhost verifies" 0
# TLS and compression together, compression inside TLS, both ways.
run nsq-tail -t tls_rt -c ch -n 3 --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/ca.pem" --deflate
expect "nsq-tail --tls --deflate reads them" 0 "${lines%$'\n'}"
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls-root-ca-file "$C/ca.pem" --snappy
expect "nsq-pub --tls --snappy publishes" 0
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls-root-ca-file "$C/ca.pem" --deflate
expect "nsq-pub --tls --deflate publishes" 0
run nsq-tail -t tls_rt -c ch -n 6 --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/ca.pem" --snappy
expect "nsq-tail --tls --snappy reads all six" 0 "${lines%$'\n'}"$'\n'"${lines%$'\n'}"
# A plain client is still served when TLS is not required (nsqd's default).
run_in "$lines" nsq-pub -t tls_plain --nsqd-tcp-address "$tls_addr"
expect "a plain client without --tls-required" 0

# /stats shows the TLS of a connected client as nsqd names it.
nsq-tail -t tls_stats -c ch -n 1 --nsqd-tcp-address "$tls_addr" --tls-root-ca-file "$C/ca.pem" \
  >"$T/stats_tail.out" 2>"$T/stats_tail.err" &
tail_pid=$!
daemon_pids+=($tail_pid)
client_tls() {
  http_get "$tls_http" "/stats?format=json&topic=tls_stats" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const t = JSON.parse(s).topics.find((t) => t.topic_name === "tls_stats");
      const c = t && t.channels[0] && t.channels[0].clients[0];
      if (c) console.log([c.tls, c.tls_version, c.tls_cipher_suite, c.tls_negotiated_protocol_is_mutual].join(" "));
    });'
}
if wait_for 20 eval '[ -n "$(client_tls)" ]'; then
  stats=$(client_tls)
  case $stats in "true TLS1.3 TLS_"*" true") ok ;; *) bad "/stats: tls, tls_version, tls_cipher_suite" "got: $stats" ;; esac
else
  bad "/stats lists the TLS client" "nothing within 20 s"
fi
run_in $'{"n":"stats"}\n' nsq-pub -t tls_stats --nsqd-tcp-address "$tls_addr" --tls-root-ca-file "$C/ca.pem"
wait $tail_pid
status=$?
out=$(cat "$T/stats_tail.out")
expect "the TLS tail gets its message and exits" 0 '{"n":"stats"}'

# --- verification failures end nsq-pub and nsq-tail with the reason -----------------------------
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/other-ca.pem" \
  --rejects "$T/wrongca.rej"
expect "nsq-pub with the wrong CA: 69" 69
expect_err "says the certificate did not verify" "certificate verify failed"
check "nothing lost: every line is a reject with the reason, at once (not after --retry-timeout)" \
  test "$(grep -c '"code":"unavailable","error":"not published: 127.0.0.1:[0-9]*: TLS handshake: .*certificate verify failed' "$T/wrongca.rej")" -eq "$(printf '%s' "$lines" | wc -l)"
run nsq-tail -t tls_rt -c ch -n 1 --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$C/other-ca.pem"
expect "nsq-tail with the wrong CA: 69" 69
expect_err "says the certificate did not verify" "certificate verify failed"
# --- no --tls-root-ca-file: OpenSSL's default verify paths, the system CA store (compiled into
# the programs with PIPEKIT_STATIC_DEPS, as in the shared libssl), or SSL_CERT_FILE/SSL_CERT_DIR -----
run_in "$lines" env -u SSL_CERT_FILE -u SSL_CERT_DIR nsq-pub -t tls_store --nsqd-tcp-address "$tls_addr" --tls
expect "nsq-pub --tls: the test CA is not in the system store: 69" 69
expect_err "says the certificate did not verify" "certificate verify failed"
run_in "$lines" env SSL_CERT_FILE="$C/ca.pem" nsq-pub -t tls_store --nsqd-tcp-address "$tls_addr" --tls
expect "nsq-pub --tls verifies against SSL_CERT_FILE" 0
mkdir -p "$T/store" && cp "$C/ca.pem" "$T/store/" && openssl rehash "$T/store" 2>/dev/null
run env SSL_CERT_DIR="$T/store" nsq-tail -t tls_store -c ch -n 3 --nsqd-tcp-address "$tls_addr" --tls
expect "nsq-tail --tls verifies against SSL_CERT_DIR" 0 "${lines%$'\n'}"
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls --tls-root-ca-file "$T/none.pem"
expect "nsq-pub with a missing CA file: 66" 66
expect_err "names the file" "--tls-root-ca-file $T/none.pem"
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "$tls_addr" --tls-cert "$C/client.pem"
expect "--tls-cert without --tls-key: 64" 64

start_broker wronghost --tls-cert "$C/wronghost.pem" --tls-key "$C/wronghost.key"
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "127.0.0.1:$wronghost_tcp" --tls-root-ca-file "$C/ca.pem"
expect "a certificate for another host: 69" 69
expect_err "says the address does not match" "mismatch"
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "127.0.0.1:$wronghost_tcp" --tls --tls-insecure-skip-verify
expect "--tls-insecure-skip-verify skips the check" 0

start_broker notls
run_in "$lines" nsq-pub -t tls_rt --nsqd-tcp-address "127.0.0.1:$notls_tcp" --tls
expect "--tls against a broker without TLS: 69" 69
expect_err "says TLS is not offered" "does not offer TLS"

# --- --tls-required -----------------------------------------------------------------------------
start_broker req --tls-cert "$C/server.pem" --tls-key "$C/server.key" --tls-required tcp-https
run_in $'{"n":1}\n' nsq-pub -t tls_req --nsqd-tcp-address "127.0.0.1:$req_tcp" --retry-timeout 1s
check "--tls-required refuses a plain PUB" [ "$status" -ne 0 ]
expect_err "with nsqd's error" "E_INVALID cannot PUB in current state (TLS required)"
run_in $'{"n":1}\n' nsq-pub -t tls_req --nsqd-tcp-address "127.0.0.1:$req_tcp" --tls-root-ca-file "$C/ca.pem"
expect "--tls-required accepts a TLS PUB" 0
# The raw exchange, as nsqd answers it: IDENTIFY is allowed, anything else is a fatal E_INVALID.
exec 4<>/dev/tcp/127.0.0.1/"$req_tcp"
printf '  V2NOP\n' >&4
reply=$(timeout 5 cat <&4 | tr -d '\0-\10' | tr -d '\13-\37')
exec 4<&-
case $reply in *"E_INVALID cannot NOP in current state (TLS required)"*) ok ;; *) bad "NOP before TLS" "got: $reply" ;; esac
# true: the plain HTTP API answers 403 TLS_REQUIRED (nsqd's answer without an HTTPS listener).
http=$(free_port)
nsq-broker --tcp-address 127.0.0.1:0 --http-address 127.0.0.1:$http -q --tls-cert "$C/server.pem" \
  --tls-key "$C/server.key" --tls-required 2>>"$T/req_true.log" &
daemon_pids+=($!)
wait_for 30 eval 'http_get '$http' /ping 2>/dev/null | grep -q TLS_REQUIRED'
check "--tls-required: plain HTTP answers TLS_REQUIRED" [ $? -eq 0 ]

# --- client certificates: require-verify -------------------------------------------------------
start_broker mtls --tls-cert "$C/server.pem" --tls-key "$C/server.key" --tls-root-ca-file "$C/ca.pem" \
  --tls-client-auth-policy require-verify --tls-required tcp-https
run_in "$lines" nsq-pub -t tls_mtls --nsqd-tcp-address "127.0.0.1:$mtls_tcp" --tls-root-ca-file "$C/ca.pem"
expect "require-verify refuses a client without a certificate: 69" 69
expect_err "says why" "TLS"
run_in "$lines" nsq-pub -t tls_mtls --nsqd-tcp-address "127.0.0.1:$mtls_tcp" --tls-root-ca-file "$C/ca.pem" \
  --tls-cert "$C/client.pem" --tls-key "$C/client.key"
expect "require-verify accepts a client certificate from the CA" 0
run nsq-tail -t tls_mtls -c ch -n 3 --nsqd-tcp-address "127.0.0.1:$mtls_tcp" --tls-root-ca-file "$C/ca.pem" \
  --tls-cert "$C/client.pem" --tls-key "$C/client.key"
expect "nsq-tail with a client certificate" 0 "${lines%$'\n'}"
kill -0 "$mtls_pid"
check "the broker lives on after a refused handshake" [ $? -eq 0 ]

# --- openssl s_client: an independent TLS client after a raw IDENTIFY ---------------------------
# The NSQ preamble in plain text, then s_client speaks TLS on the same socket (-connect to a
# relay would hide the preamble, so node hands it the socket through a local pipe).
check_s_client() {
  node -e '
    const net = require("net"), { spawn } = require("child_process");
    const [port, ca] = process.argv.slice(1);
    const body = JSON.stringify({ feature_negotiation: true, tls_v1: true, client_id: "s_client" });
    const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
    const srv = net.createServer((local) => {
      const up = net.connect(+port, "127.0.0.1", () => up.write(Buffer.concat([Buffer.from("  V2IDENTIFY\n"), len, Buffer.from(body)])));
      let got = Buffer.alloc(0);
      const onData = (d) => {
        got = Buffer.concat([got, d]);
        if (got.length < 4 || got.length < 4 + got.readUInt32BE(0)) return;
        up.removeListener("data", onData);
        up.pipe(local); local.pipe(up);  // from here on: TLS between s_client and the broker
        local.resume();
      };
      local.pause();
      up.on("data", onData);
      up.on("error", () => {}); local.on("error", () => {});
    }).listen(0, "127.0.0.1", () => {
      const sc = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${srv.address().port}`, "-CAfile", ca,
        "-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      sc.stdout.on("data", (d) => {
        out += d.toString("latin1");
        if (out.includes("OK")) { console.log("inside TLS: OK"); sc.kill(); srv.close(); process.exit(0); }
      });
      sc.stdin.write("NOP\n");
      setTimeout(() => { console.log("no OK within 10 s: " + JSON.stringify(out)); process.exit(1); }, 10000);
    });' "$1" "$2"
}
run check_s_client "$tls_tcp" "$C/ca.pem"
expect "openssl s_client completes the handshake and reads OK inside TLS" 0 "inside TLS: OK"

finish
