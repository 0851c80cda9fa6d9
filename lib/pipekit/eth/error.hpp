#pragma once
// What goes wrong in lib/pipekit/eth, as kinds a program maps to its own exit codes and flag names
// (ethcall: lib/pipekit/eth_cli/errors.hpp). The library names no flag and carries no exit code,
// so daemons and generated bindings use it without a command line.
//
// Two other error types stay as they are: rpc_error (the node answered with a JSON-RPC error
// object: a revert of eth_call among them) and abi_error (a value, signature or ABI that cannot be
// encoded or decoded).
#include <stdexcept>
#include <string>
#include <utility>

namespace pipekit::eth {

enum class error_kind {
  invalid_url,       // rpc_options::url cannot be used (no known scheme, not a valid URL)
  invalid_argument,  // the caller asked for something that cannot be done: a subscription over
                     // http, a key from an environment variable that is not set
  invalid_input,     // what the caller handed over cannot be used: a key, a keystore, a checkpoint file
  unreadable,        // a file the caller named cannot be opened or read
  transport,         // the node cannot be reached, or the exchange failed on the way (after retries)
  response,          // the node answered, but not with a well-formed answer to the request
  response_too_large,  // the answer is larger than rpc_options::max_response
  revert,            // a call or a gas estimate reverted; nothing was sent
  rejected,          // the node refused the request with a JSON-RPC error that is not a revert
  failed,            // the transaction was mined and failed (status 0x0)
  timeout,           // no receipt (or not deep enough) within the wait
  wrong_chain,       // the node is on another chain than the one required
  unsupported,       // the chain lacks what was asked (EIP-1559 fees)
  unsettled,         // the chain kept changing under repeated fetches (reorgs): try again
  write_failed,      // a file could not be written (a checkpoint)
  internal,          // a resource the library needs could not be had (a thread)
};

class error : public std::runtime_error {
 public:
  // subject: what the error concerns, for a program to act on; the message already shows it where
  // it may be shown. A file the caller named (unreadable, invalid_input: so a program can name the
  // flag that gave it), the transaction hash (timeout), the 0x-hex revert data (revert, failed,
  // when the node gave it: for typed custom errors); else empty.
  error(error_kind kind, std::string message, std::string subject = {})
      : std::runtime_error(std::move(message)), kind_(kind), subject_(std::move(subject)) {}
  error_kind kind() const noexcept { return kind_; }
  const std::string& subject() const noexcept { return subject_; }

 private:
  error_kind kind_;
  std::string subject_;
};

}  // namespace pipekit::eth
