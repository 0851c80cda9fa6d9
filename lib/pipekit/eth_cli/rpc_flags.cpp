#include "pipekit/eth_cli/rpc_flags.hpp"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth_cli/errors.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::eth_cli {
namespace {

constexpr const char* default_rpc_url = "http://127.0.0.1:8545";

// "1048576", "64KiB", "256MiB", "1GiB" (K, M, G alone mean the same): bytes, at least 1 KiB.
std::size_t parse_size(std::string_view text, std::string_view flag) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  int shift = unit.empty() || unit == "B" ? 0 : unit == "K" || unit == "KiB" ? 10 : unit == "M" || unit == "MiB" ? 20 : unit == "G" || unit == "GiB" ? 30 : -1;
  if (ec != std::errc() || end == text.data() || shift < 0)
    pipekit::fatal(exit_code::usage, "{}: \"{}\" is not a size (bytes, or with KiB, MiB, GiB)", flag, text);
  if (n > (std::uint64_t{1} << (62 - shift))) pipekit::fatal(exit_code::usage, "{}: {} is too large", flag, text);
  n <<= shift;
  if (n < 1024) pipekit::fatal(exit_code::usage, "{}: {} is less than 1 KiB", flag, text);
  return static_cast<std::size_t>(n);
}

}  // namespace

eth::rpc_options rpc_flags::options() const {
  eth::rpc_options o;
  const char* env = std::getenv("ETH_RPC_URL");
  o.url = url ? *url : env != nullptr && *env != '\0' ? env : default_rpc_url;
  try {
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(util::parse_duration(timeout));
  } catch (const std::invalid_argument& e) {
    pipekit::fatal(exit_code::usage, "--rpc-timeout: {}", e.what());
  }
  o.max_response = parse_size(max_response, "--max-response-size");
  return o;
}

eth::rpc_client rpc_flags::connect() const {
  try {
    return eth::rpc_client(options());
  } catch (const eth::error& e) {
    fatal(e);
  }
}

void add_rpc_flags(CLI::App* sub, rpc_flags& f) {
  // Not CLI11's envname: every subcommand binds these same flags, and CLI11 would apply the
  // environment through the subcommands that were not chosen, over the flag that was given.
  sub->add_option_function<std::string>("--rpc-url,-r", [&f](const std::string& u) { f.url = u; },
                                         "Node URL: http(s)://, ws(s)://, or an IPC socket path (default: $ETH_RPC_URL, else http://127.0.0.1:8545)")
      ->type_name("URL");
  sub->add_option("--rpc-timeout", f.timeout, "Timeout of one request, e.g. 30s")->type_name("DURATION")->capture_default_str();
  sub->add_option("--max-response-size", f.max_response, "Largest answer taken from the node (then exit 69), e.g. 64MiB")
      ->type_name("SIZE")
      ->capture_default_str();
}

}  // namespace pipekit::eth_cli
