#pragma once
// Where lib/pipekit/eth's errors meet a command line: each kind's exit code (exit_code.hpp) and
// the flag that gave the input it concerns. The library names neither; programs map here.
#include <string_view>

#include "pipekit/eth/error.hpp"

namespace pipekit::eth_cli {

// invalid_url, invalid_argument 64; invalid_input 65; unreadable 66; transport, response,
// response_too_large 69; revert, rejected, failed, unsupported 1; timeout, unsettled 75; wrong_chain 78;
// write_failed 74; internal 70.
int exit_code_of(eth::error_kind kind) noexcept;

// e as a pipekit::fatal_error: its kind's exit code and its message, prefixed with `flag` when
// given ("--keystore FILE: ..."); invalid_url is prefixed with --rpc-url and response_too_large
// ends with "(--max-response-size)", the flags that set them.
[[noreturn]] void fatal(const eth::error& e, std::string_view flag = {});

}  // namespace pipekit::eth_cli
