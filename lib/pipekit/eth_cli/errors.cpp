#include "pipekit/eth_cli/errors.hpp"

#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"

namespace pipekit::eth_cli {

int exit_code_of(eth::error_kind kind) noexcept {
  using k = eth::error_kind;
  switch (kind) {
    case k::invalid_url:
    case k::invalid_argument: return exit_code::usage;
    case k::invalid_input: return exit_code::data_error;
    case k::unreadable: return exit_code::no_input;
    case k::transport:
    case k::response:
    case k::response_too_large: return exit_code::unavailable;
    case k::revert:
    case k::rejected:
    case k::failed:
    case k::unsupported: return exit_code::failure;
    case k::timeout:
    case k::unsettled: return exit_code::temp_fail;
    case k::wrong_chain: return exit_code::config;
    case k::write_failed: return exit_code::io_error;
    case k::internal: return exit_code::software;
  }
  return exit_code::software;
}

void fatal(const eth::error& e, std::string_view flag) {
  const int code = exit_code_of(e.kind());
  if (!flag.empty()) throw fatal_error(code, fmt::format("{} {}", flag, e.what()));
  if (e.kind() == eth::error_kind::invalid_url) throw fatal_error(code, fmt::format("--rpc-url {}", e.what()));
  if (e.kind() == eth::error_kind::response_too_large)
    throw fatal_error(code, fmt::format("{} (--max-response-size)", e.what()));
  throw fatal_error(code, e.what());
}

}  // namespace pipekit::eth_cli
