// ws-push: a WebSocket push node. Flags and wiring only; the node is pipekit::push::server.
#include <chrono>
#include <string>
#include <string_view>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/push/connect.hpp"
#include "pipekit/push/server.hpp"

namespace {

constexpr std::string_view tool = "ws-push";

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A WebSocket push node: users log in with a token and keep a connection; messages posted to /push reach "
               "every connection of their user. Routes (user -> nodes) are kept in Redis for push-route."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  pipekit::cli::add_config_flag(app);

  pipekit::push::options o;
  app.add_option("--listen", o.listen, "<addr>:<port> for WebSocket clients")->type_name("ADDR")->capture_default_str();
  app.add_option("--path", o.path, "The WebSocket endpoint's path")->capture_default_str();
  app.add_option("--tls-cert", o.tls.cert_file, "Certificate (chain) PEM file; with --tls-key, --listen serves wss:// only")
      ->type_name("FILE");
  app.add_option("--tls-key", o.tls.key_file, "Private key PEM file of --tls-cert")->type_name("FILE");
  auto* tls_min = app.add_option("--tls-min-version", o.tls.min_version, "Minimum TLS version: tls1.2 or tls1.3")
                      ->check(CLI::IsMember({"tls1.2", "tls1.3"}))
                      ->capture_default_str();
  app.add_option("--push-listen", o.push_listen, "<addr>:<port> for the push API (/push, /stats, /metrics, /healthz)")
      ->type_name("ADDR")->capture_default_str();
  app.add_option("--allowed-origin", o.allowed_origins,
                 "An Origin allowed to connect: exact (https://app.example.com), a host, or *.example.com; "
                 "repeatable (default: the same host only; requests without Origin are allowed)")
      ->type_name("ORIGIN");
  app.add_flag("--allow-query-token", o.allow_query_token,
               "Also take the token from ?token= on the upgrade URL (it leaks into logs: off by default)");
  app.add_option("--max-connections", o.max_connections, "Refuse (503) new connections beyond this many")
      ->capture_default_str();
  pipekit::cli::add_duration_option(app, "--handshake-timeout", o.handshake_timeout,
                                    "A connection must complete its upgrade within this");
  pipekit::cli::add_duration_option(app, "--login-timeout", o.login_timeout,
                                    "A connection must log in within this (closed with 4002)");
  pipekit::cli::add_duration_option(app, "--ping-interval", o.ping_interval,
                                    "Ping a connection from which no frame came for this long");
  pipekit::cli::add_duration_option(app, "--pong-timeout", o.pong_timeout,
                                    "Drop a connection when no pong (nor any other frame) follows a ping within this");
  pipekit::cli::add_duration_option(app, "--idle-timeout", o.idle_timeout,
                                    "Close (4004) a connection that sent no message for this long; pongs do not "
                                    "count (0: never)");
  app.add_option("--max-message-size", o.max_message_size, "Largest message a client may send (bytes; 1009 beyond)")
      ->capture_default_str();
  app.add_option("--send-queue-bytes", o.send_queue_bytes,
                 "Bytes queued for one connection; beyond, it is closed as a slow consumer (4008)")
      ->capture_default_str();
  bool from_stdin = false;
  app.add_flag("--stdin", from_stdin,
               "Also read push messages as JSON Lines from stdin and write their answers to stdout; drain and exit "
               "at the end of input");
  std::string push_token_file;
  app.add_option("--push-token-file", push_token_file,
                 "File with the bearer token /push requires (or env WS_PUSH_API_TOKEN; default: none)")
      ->type_name("FILE");

  pipekit::push::auth_service_options auth;
  std::string auth_secret_file;
  app.add_option("--auth-url", auth.url,
                 "Verify tokens by POSTing {\"token\":...} to this auth service (http://); 200 with {\"user\":...} "
                 "accepts")
      ->type_name("URL");
  app.add_option("--auth-secret-file", auth_secret_file,
                 "File with a secret sent to the auth service as Authorization: Bearer (or env WS_PUSH_AUTH_SECRET)")
      ->type_name("FILE");
  pipekit::cli::add_duration_option(app, "--auth-timeout", auth.timeout,
                                    "A login the auth service has not answered within this is refused (1013)");
  pipekit::cli::add_duration_option(app, "--auth-cache-ttl", auth.cache_ttl,
                                    "Keep the auth service's acceptances this long (refusals: at most 5s; 0: no cache)");

  std::string jwt_secret_file, jwt_public_key_file, jwt_algorithm;
  pipekit::push::jwt_options jwt;
  app.add_option("--jwt-secret-file", jwt_secret_file,
                 "File with the HMAC secret for HS256/384/512 tokens (or env WS_PUSH_JWT_SECRET)")
      ->type_name("FILE");
  app.add_option("--jwt-public-key", jwt_public_key_file, "PEM file with the public key for RS*/ES* tokens")
      ->type_name("FILE");
  app.add_option("--jwt-algorithm", jwt_algorithm,
                 "The only algorithm accepted: HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512 "
                 "(default: HS256 with a secret, RS256 with a public key)")
      ->type_name("ALG");
  std::chrono::milliseconds leeway{5000};
  pipekit::cli::add_duration_option(app, "--jwt-leeway", leeway, "Clock skew allowed for exp and nbf");
  app.add_option("--jwt-audience", jwt.audience, "When set, tokens must name it in aud");
  app.add_option("--jwt-issuer", jwt.issuer, "When set, tokens must have it as iss");
  app.add_option("--user-claim", jwt.user_claim, "The claim that holds the user id")->capture_default_str();

  std::string redis_url, redis_password_file;
  pipekit::push::routes_options routes;
  app.add_option("--redis", redis_url, "Redis URL (redis://[:password@]host:port[/db]) for routes; none: a single node")
      ->envname("REDIS_URL")->type_name("URL");
  app.add_option("--redis-password-file", redis_password_file, "File with the Redis password (or env REDIS_PASSWORD)")
      ->type_name("FILE");
  app.add_option("--node-id", routes.node_id, "This node's id in Redis (default: host name and push port)");
  app.add_option("--node-address", routes.node_address,
                 "Where push-route reaches this node's push API (default: --push-listen as bound)")
      ->type_name("ADDR");
  app.add_option("--redis-prefix", routes.prefix, "Prefix of every Redis key")->capture_default_str();
  pipekit::cli::add_duration_option(app, "--route-ttl", routes.ttl, "Routes expire unless refreshed (every ttl/3)");
  app.add_option("--history-size", o.history.size,
                 "With --redis: messages kept per user for clients that log in with \"since\" (0: no history)")
      ->capture_default_str();
  pipekit::cli::add_duration_option(app, "--history-ttl", o.history.ttl,
                                    "A user's history expires this long after its last message");
  app.add_option("--replay-on-login", o.replay_on_login,
                 "A login without \"since\" first gets the user's last N messages (0: live ones only)")
      ->capture_default_str();
  pipekit::cli::add_duration_option(app, "--drain-timeout", o.drain_timeout,
                                    "On SIGTERM, how long clients get to close after 1001");

  pipekit::push::connect_options co;
  std::string token_file;
  auto* connect = app.add_subcommand("connect", "Log in to a push node and print each message received as a JSON line");
  connect->add_option("url", co.url, "The node's WebSocket URL, e.g. ws://127.0.0.1:8080/ws")->required();
  connect->add_option("--token-file", token_file, "File with the token to log in with (or env WS_PUSH_TOKEN)")
      ->type_name("FILE");
  connect->add_option("-n,--count", co.count, "Exit after this many messages (default: run until stopped)");
  connect->add_option("--since", co.since,
                      "Log in with this message id: first get the messages after it (reconnects resume from the last one seen)")
      ->type_name("ID");
  connect->add_option("--tls-root-ca-file", co.tls.root_ca_file,
                      "CA certificates (PEM) to verify a wss:// node against (default: the system's)")
      ->type_name("FILE");
  connect->add_flag("--tls-insecure-skip-verify", co.tls.insecure_skip_verify,
                    "Do not verify the node's certificate or host name (insecure; tests only)");
  connect->add_option("--tls-min-version", co.tls.min_version, "Minimum TLS version: tls1.2 or tls1.3")
      ->check(CLI::IsMember({"tls1.2", "tls1.3"}))
      ->capture_default_str();
  pipekit::cli::add_duration_option(*connect, "--timeout", co.timeout, "For connecting, the handshake and the login");
  pipekit::cli::add_duration_option(*connect, "--reconnect-max", co.reconnect_max,
                                    "Longest wait between reconnects (the backoff starts at 500ms and doubles)");

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    if (connect->parsed()) {
      co.token = pipekit::cli::read_secret(token_file, "WS_PUSH_TOKEN", "--token-file");
      return pipekit::push::connect(co);
    }
    using pipekit::exit_code::config;
    using pipekit::exit_code::usage;
    if (o.tls.cert_file.empty() != o.tls.key_file.empty())
      pipekit::fatal(usage, "--tls-cert and --tls-key go together; both name PEM files");
    if (o.tls.cert_file.empty() && tls_min->count() > 0) pipekit::fatal(usage, "--tls-min-version needs --tls-cert");
    std::string secret = pipekit::cli::read_secret(jwt_secret_file, "WS_PUSH_JWT_SECRET", "--jwt-secret-file");
    const int ways = int(!secret.empty()) + int(!jwt_public_key_file.empty()) + int(!auth.url.empty());
    if (ways > 1) pipekit::fatal(usage, "--auth-url, --jwt-secret-file (or WS_PUSH_JWT_SECRET), --jwt-public-key: give one");
    if (ways == 0)
      pipekit::fatal(config, "no token verification: give --auth-url, --jwt-secret-file (or WS_PUSH_JWT_SECRET) or "
                             "--jwt-public-key");
    if (!auth.url.empty()) {
      for (const char* jwt_only : {"--jwt-algorithm", "--jwt-leeway", "--jwt-audience", "--jwt-issuer", "--user-claim"})
        if (app.count(jwt_only) > 0) pipekit::fatal(usage, "{}: only with a JWT key, not with --auth-url", jwt_only);
      if (auth.timeout <= std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--auth-timeout: must be more than 0");
      if (auth.cache_ttl < std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--auth-cache-ttl: must not be negative");
      auth.secret = pipekit::cli::read_secret(auth_secret_file, "WS_PUSH_AUTH_SECRET", "--auth-secret-file");
      try {
        pipekit::push::auth_service::check(auth);
      } catch (const std::invalid_argument& e) {
        pipekit::fatal(usage, "--auth-url {}: {}", auth.url, e.what());
      }
      o.auth = auth;
    } else {
      jwt.algorithm = secret.empty() ? pipekit::push::jwt_algorithm::rs256 : pipekit::push::jwt_algorithm::hs256;
      if (!jwt_algorithm.empty()) {
        auto a = pipekit::push::parse_jwt_algorithm(jwt_algorithm);
        if (!a) pipekit::fatal(usage, "--jwt-algorithm {}: not one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512",
                               jwt_algorithm);
        if (pipekit::push::is_hmac(*a) == secret.empty())
          pipekit::fatal(usage, "--jwt-algorithm {}: {} needs {}", jwt_algorithm, jwt_algorithm,
                         secret.empty() ? "--jwt-secret-file" : "--jwt-public-key");
        jwt.algorithm = *a;
      }
      jwt.key = secret.empty() ? pipekit::cli::read_secret(jwt_public_key_file, "", "--jwt-public-key") : secret;
      jwt.leeway = std::chrono::duration_cast<std::chrono::seconds>(leeway);
      try {
        pipekit::push::jwt_verifier check(jwt);
      } catch (const std::invalid_argument& e) {
        pipekit::fatal(config, "{}: {}", secret.empty() ? "--jwt-public-key " + jwt_public_key_file : "--jwt-secret-file",
                       e.what());
      }
      o.jwt = jwt;
    }
    o.push_token = pipekit::cli::read_secret(push_token_file, "WS_PUSH_API_TOKEN", "--push-token-file");
    if (o.ping_interval <= std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--ping-interval: must be more than 0");
    if (o.pong_timeout <= std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--pong-timeout: must be more than 0");
    if (o.idle_timeout < std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--idle-timeout: must not be negative");
    if (routes.ttl < std::chrono::milliseconds(300)) pipekit::fatal(usage, "--route-ttl: must be at least 300ms");
    if (!redis_url.empty()) {
      try {
        routes.redis = pipekit::redis::parse_url(redis_url);
      } catch (const std::invalid_argument& e) {
        pipekit::fatal(usage, "--redis: {}", e.what());
      }
      auto password = pipekit::cli::read_secret(redis_password_file, "REDIS_PASSWORD", "--redis-password-file");
      if (!password.empty()) routes.redis.password = password;
      if (routes.node_id.empty()) routes.node_id = host_name() + ":" + o.push_listen.substr(o.push_listen.rfind(':') + 1);
      o.routes = routes;
    }
    if (from_stdin) o.input = "-";
    return pipekit::push::run(o);
  });
}
