// push-route: forwards push messages to the ws-push nodes that hold their users. Flags and wiring
// only; the router is pipekit::push::run_router.
#include <chrono>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/push/router.hpp"

namespace {
constexpr std::string_view tool = "push-route";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reads push messages as JSON Lines, finds each user's live ws-push nodes in Redis and forwards the "
               "messages to them; what could not be delivered comes out on stdout as JSON records with a reason."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  pipekit::cli::add_config_flag(app);

  pipekit::push::router_options o;
  std::vector<std::string> inputs;
  app.add_option("inputs", inputs, "Files to read, in order; - is stdin (default: stdin)");
  std::string redis_url = "redis://127.0.0.1:6379", redis_password_file;
  app.add_option("--redis", redis_url, "Redis URL (redis://[:password@]host:port[/db]) where ws-push keeps routes")
      ->envname("REDIS_URL")->type_name("URL")->capture_default_str();
  app.add_option("--redis-password-file", redis_password_file, "File with the Redis password (or env REDIS_PASSWORD)")
      ->type_name("FILE");
  app.add_option("--redis-prefix", o.prefix, "Prefix of every Redis key (as ws-push's)")->capture_default_str();
  app.add_option("--user-pointer", o.user_pointer,
                 "JSON Pointer to the user (a string, an integer or an array of them) in each line, e.g. /args/to; "
                 "without it, lines are push messages {\"user\"|\"users\"|\"broadcast\",\"data\",\"id\"}")
      ->type_name("POINTER");
  app.add_option("--data-pointer", o.data_pointer, "With --user-pointer: JSON Pointer to the data (default: the whole line)")
      ->type_name("POINTER");
  app.add_option("--id-pointer", o.id_pointer, "JSON Pointer to the message id (default: the line's \"id\")")
      ->type_name("POINTER");
  std::string user_case = "exact";
  app.add_option("--user-case", user_case,
                 "exact, or lower: user ids lower-cased, so a checksummed address meets a lower-case login")
      ->check(CLI::IsMember({"exact", "lower"}))->capture_default_str();
  app.add_option("--concurrency", o.concurrency,
                 "Requests in flight to one node (more than 1 may reorder one user's messages)")
      ->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--batch-size", o.batch_max, "Messages in one request to a node")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  pipekit::cli::add_duration_option(app, "--timeout", o.timeout, "For one request to a node");
  app.add_option("--max-pending", o.max_pending, "Messages read ahead and not finished; input waits beyond")
      ->check(CLI::Range(1, 10000000))->capture_default_str();
  std::string push_token_file;
  app.add_option("--push-token-file", push_token_file,
                 "File with the bearer token the nodes' /push requires (or env WS_PUSH_API_TOKEN)")
      ->type_name("FILE");
  app.add_option("--undelivered", o.undelivered, "Where undelivered records go (- is stdout)")
      ->type_name("FILE")->capture_default_str();
  app.add_option("--delivered", o.delivered, "Also write a record per delivered message to this file")
      ->type_name("FILE");
  app.add_flag("--stats", o.stats, "A summary on stderr at exit (always on SIGUSR1)");
  app.add_option("--history-size", o.history.size,
                 "Messages kept per user in Redis for clients that log in with \"since\" (0: no history)")
      ->capture_default_str();
  pipekit::cli::add_duration_option(app, "--history-ttl", o.history.ttl,
                                    "A user's history expires this long after its last message");

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    using pipekit::exit_code::usage;
    if (!inputs.empty()) o.inputs = inputs;
    try {
      o.redis = pipekit::redis::parse_url(redis_url);
    } catch (const std::invalid_argument& e) {
      pipekit::fatal(usage, "--redis: {}", e.what());
    }
    auto password = pipekit::cli::read_secret(redis_password_file, "REDIS_PASSWORD", "--redis-password-file");
    if (!password.empty()) o.redis.password = password;
    o.user_lower = user_case == "lower";
    if (o.timeout <= std::chrono::milliseconds::zero()) pipekit::fatal(usage, "--timeout: must be more than 0");
    if (!o.data_pointer.empty() && o.user_pointer.empty())
      pipekit::fatal(usage, "--data-pointer needs --user-pointer");
    o.push_token = pipekit::cli::read_secret(push_token_file, "WS_PUSH_API_TOKEN", "--push-token-file");
    return pipekit::push::run_router(o);
  });
}
