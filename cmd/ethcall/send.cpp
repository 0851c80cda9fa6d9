// ethcall's transaction commands: send, deploy, estimate: flags and wiring. Transactions are signed
// with a key from a file, ETH_PRIVATE_KEY or a keystore (lib/pipekit/eth/tx.hpp, keystore.hpp), or
// by the node itself (--unlocked); sent and waited for by lib/pipekit/eth/transact.hpp. No secret
// is ever printed or logged: the key object cannot be.
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/keystore.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/transact.hpp"
#include "pipekit/eth/tx.hpp"
#include "pipekit/eth_cli/errors.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
namespace log = pipekit::log;
using pipekit::fatal;

constexpr const char* key_env = "ETH_PRIVATE_KEY";

struct send_cmds {
  rpc_flags rpc;
  // wallet
  std::string private_key_file, keystore, password_file, from;
  bool unlocked = false;
  // transaction
  std::string value, nonce, gas_limit, gas_price, priority_gas_price, chain;
  bool legacy = false;
  // waiting
  bool async = false;
  std::uint64_t confirmations = 1;
  std::string timeout = "300s";
  // what to send
  std::string to, sig, abi_path, bin_path;
  bool json_args = false;
  std::vector<std::string> args;
};

send_cmds& send_opts() {
  static send_cmds o;
  return o;
}

// ---- flags: parsed before anything is read or sent, so a typo costs nothing -------------------

eth::u256 u256_flag(const std::string& text, std::string_view flag) {
  try {
    return eth::parse_u256(text);
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "{}: {}", flag, e.what());
  }
}

std::optional<std::uint64_t> u64_flag(const std::string& text, std::string_view flag) {
  if (text.empty()) return std::nullopt;
  auto v = u256_flag(text, flag).to_u64();
  if (!v) fatal(exit_code::usage, "{}: {} does not fit in 64 bits", flag, text);
  return v;
}

eth::address_bytes address_arg(const std::string& text, std::string_view what) {
  try {
    return eth::parse_address(text);
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::data_error, "{}: {}", what, e.what());
  }
}

struct tx_flags {
  eth::tx_options tx;
  eth::wait_options wait;
};

tx_flags parse_tx_flags() {
  const auto& o = send_opts();
  tx_flags f;
  if (!o.value.empty()) f.tx.value = u256_flag(o.value, "--value");
  if (!o.gas_price.empty()) f.tx.gas_price = u256_flag(o.gas_price, "--gas-price");
  if (!o.priority_gas_price.empty()) {
    if (o.legacy) fatal(exit_code::usage, "--priority-gas-price: legacy transactions have no priority fee (--legacy)");
    f.tx.priority_fee = u256_flag(o.priority_gas_price, "--priority-gas-price");
  }
  f.tx.nonce = u64_flag(o.nonce, "--nonce");
  f.tx.gas = u64_flag(o.gas_limit, "--gas-limit");
  f.tx.chain = u64_flag(o.chain, "--chain");
  f.tx.legacy = o.legacy;
  f.wait.confirmations = o.confirmations;
  try {
    f.wait.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(pipekit::util::parse_duration(o.timeout));
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "--timeout: {}", e.what());
  }
  return f;
}

// ---- the signer: a local key, or the node (--unlocked) -----------------------------------------

eth::signer load_signer() {
  const auto& o = send_opts();
  const char* env = std::getenv(key_env);
  eth::signer s;
  if (o.unlocked) {
    if (o.from.empty()) fatal(exit_code::usage, "--unlocked needs --from ADDRESS (the node's account that signs)");
    if (!o.private_key_file.empty() || !o.keystore.empty())
      fatal(exit_code::usage, "--unlocked: the node signs; do not give --private-key-file or --keystore as well");
    s.from = eth::to_hex(address_arg(o.from, "--from"));
    return s;
  }
  if (!o.private_key_file.empty() && !o.keystore.empty())
    fatal(exit_code::usage, "give one key: --private-key-file or --keystore, not both");
  if (!o.password_file.empty() && o.keystore.empty()) fatal(exit_code::usage, "--password-file goes with --keystore FILE");
  if (!o.private_key_file.empty()) {
    try {
      s.key.emplace(eth::load_key_file(o.private_key_file));
    } catch (const eth::error& e) {
      pipekit::eth_cli::fatal(e, "--private-key-file");
    }
  } else if (!o.keystore.empty()) {
    if (o.password_file.empty()) fatal(exit_code::usage, "--keystore {} needs --password-file FILE", o.keystore);
    try {
      s.key.emplace(eth::load_keystore(o.keystore, o.password_file));
    } catch (const eth::error& e) {
      pipekit::eth_cli::fatal(e, e.subject() == o.keystore ? "--keystore" : "--password-file");
    }
  } else if (env != nullptr && *env != '\0') {
    s.key.emplace(eth::load_key_env(key_env));
  } else {
    fatal(exit_code::usage,
          "no signing key: give --private-key-file FILE, --keystore FILE with --password-file FILE, or set {}; "
          "or let the node sign with --unlocked --from ADDRESS",
          key_env);
  }
  s.from = eth::to_hex(s.key->addr());
  if (!o.from.empty() && address_arg(o.from, "--from") != s.key->addr())
    fatal(exit_code::usage, "--from {} is not the key's address ({})", o.from, eth::checksum_address(s.key->addr()));
  return s;
}

// ---- sending (lib/pipekit/eth/transact.hpp) ----------------------------------------------------

// The library's errors with the flags that bear on them.
[[noreturn]] void fail(const eth::error& e) {
  switch (e.kind()) {
    case eth::error_kind::wrong_chain: fatal(exit_code::config, "{} (--chain)", e.what());
    case eth::error_kind::unsupported: fatal(exit_code::failure, "{}; use --legacy", e.what());
    case eth::error_kind::timeout:
      fatal(exit_code::temp_fail, "{}: raise --timeout ({}), or check later with 'ethcall receipt {}'", e.what(),
            send_opts().timeout, e.subject());
    default: pipekit::eth_cli::fatal(e);
  }
}

// Signs (or has the node sign), sends, waits, prints. `shape` makes the output record; a failed
// transaction's receipt is printed before the error that says why.
int transact(const eth::tx_request& r, const std::function<json(const json&)>& shape) {
  const auto& o = send_opts();
  tx_flags f = parse_tx_flags();
  eth::signer s = load_signer();
  auto c = o.rpc.connect();
  try {
    std::string hash = eth::submit(c, r, s, f.tx);
    if (o.async) {
      common_flags text;
      text.bare_text = true;
      return print_result(hash, text);
    }
    json receipt = eth::wait_for_receipt(c, hash, f.wait);
    print_result(shape(receipt), common_flags{});
    eth::check_receipt(c, r, s, f.tx, receipt);
  } catch (const eth::error& e) {
    fail(e);
  }
  return exit_code::ok;
}

// ---- the commands -------------------------------------------------------------------------------

// TO SIG ARGS (or TO with --abi FUNCTION ARGS); no SIG: plain transfer, no data.
eth::tx_request call_request(const char* verb, const std::optional<eth::abi_file>& abi) {
  const auto& o = send_opts();
  eth::tx_request r;
  r.to = address_arg(o.to, "TO");
  r.abi = abi ? &*abi : nullptr;
  if (o.sig.empty()) {
    if (!o.args.empty()) fatal(exit_code::usage, "{}: ARGS without SIG", verb);
    r.what = fmt::format("{} to {}", verb, o.to);
    return r;
  }
  const eth::abi_function fn =
      abi ? abi->function(o.sig, o.json_args ? std::nullopt : std::optional<std::size_t>(o.args.size()))
          : eth::parse_signature(o.sig);
  r.data = eth::encode_call(fn, cli_args(fn.inputs, o.args, o.json_args));
  r.what = fmt::format("{} to {} {}", verb, o.to, fn.signature());
  return r;
}

int send_cmd() {
  auto abi = load_abi(send_opts().abi_path);
  return transact(call_request("send", abi), [](const json& receipt) { return receipt; });
}

eth::bytes read_bin(const std::string& path) {
  std::string text = read_input_file(path, "--bin", max_bin_file);
  auto first = text.find_first_not_of(" \t\r\n"), last = text.find_last_not_of(" \t\r\n");
  std::string_view hex = first == std::string::npos ? std::string_view() : std::string_view(text).substr(first, last - first + 1);
  eth::bytes code;
  try {
    code = eth::from_hex(hex);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::data_error, "--bin {}: {} (unlinked library placeholders?)", path, e.what());
  }
  if (code.empty()) fatal(exit_code::data_error, "--bin {}: no bytecode", path);
  return code;
}

int deploy_cmd() {
  const auto& o = send_opts();
  auto abi = load_abi(o.abi_path);
  eth::tx_request r;
  r.what = "deploy";
  r.abi = abi ? &*abi : nullptr;
  r.data = read_bin(o.bin_path);
  const eth::abi_function* ctor = abi ? abi->constructor() : nullptr;
  if (ctor != nullptr) {
    eth::bytes args = eth::encode(ctor->inputs, cli_args(ctor->inputs, o.args, o.json_args));
    r.data.insert(r.data.end(), args.begin(), args.end());
  } else if (!o.args.empty()) {
    fatal(exit_code::usage, "deploy: constructor ARGS need an --abi FILE with a constructor");
  }
  return transact(r, [](const json& receipt) {
    json address = receipt.value("contractAddress", json());
    if (address.is_string()) {
      try {
        address = eth::checksum_address(eth::parse_address(address.get<std::string>()));
      } catch (const std::invalid_argument&) {
      }
    }
    return json{{"address", address}, {"receipt", receipt}};
  });
}

int estimate_cmd() {
  const auto& o = send_opts();
  auto abi = load_abi(o.abi_path);
  eth::tx_request r = call_request("estimate", abi);
  std::optional<eth::u256> value;
  if (!o.value.empty()) value = u256_flag(o.value, "--value");
  std::string from = o.from.empty() ? std::string() : eth::to_hex(address_arg(o.from, "--from"));
  auto c = o.rpc.connect();
  try {
    return print_result(json(eth::estimate_gas(c, r, r.call_object(from, value))), common_flags{});
  } catch (const eth::error& e) {
    fail(e);
  }
}

// ---- flag groups ------------------------------------------------------------------------------

void add_target_flags(CLI::App* s, send_cmds& o) {
  s->add_option("TO", o.to, "Contract (or account) address")->required();
  s->add_option("SIG", o.sig, "Function signature, e.g. 'set(uint256)', or a name with --abi; none: no data");
  s->add_option("--abi", o.abi_path, "JSON ABI file: SIG is a function name; custom errors decoded")->type_name("FILE");
  s->add_flag("--json-args", o.json_args, "ARGS is one JSON array holding all arguments");
  s->footer("ARGS: one per parameter after SIG, as for calldata.");
}

void add_value_flags(CLI::App* s, send_cmds& o) {
  s->add_option("--value", o.value, "Wei sent with the transaction (decimal or 0x-hex)")->type_name("WEI");
}

void add_transaction_flags(CLI::App* s, send_cmds& o) {
  s->add_option("--private-key-file", o.private_key_file, "File holding the hex private key (default: $ETH_PRIVATE_KEY)")
      ->type_name("FILE");
  s->add_option("--keystore", o.keystore, "geth keystore v3 file (scrypt or pbkdf2), with --password-file")->type_name("FILE");
  s->add_option("--password-file", o.password_file, "File holding the keystore's password (one trailing newline ignored)")
      ->type_name("FILE");
  s->add_flag("--unlocked", o.unlocked, "Let the node sign (eth_sendTransaction) as --from");
  s->add_option("--from", o.from, "Sender: the node's account with --unlocked, else checked against the key")
      ->type_name("ADDRESS");
  add_value_flags(s, o);
  s->add_option("--nonce", o.nonce, "Nonce (default: the sender's pending transaction count)")->type_name("N");
  s->add_option("--gas-limit", o.gas_limit, "Gas limit (default: eth_estimateGas)")->type_name("GAS");
  s->add_option("--gas-price", o.gas_price, "Max fee per gas in wei; with --legacy the gas price (default: from the node)")
      ->type_name("WEI");
  s->add_option("--priority-gas-price", o.priority_gas_price,
                "Max priority fee per gas in wei (default: eth_maxPriorityFeePerGas, else 1 gwei)")
      ->type_name("WEI");
  s->add_flag("--legacy", o.legacy, "Legacy (EIP-155) transaction instead of EIP-1559");
  s->add_option("--chain,--chain-id", o.chain, "Refuse to send unless the node is on this chain id (exit 78)")
      ->type_name("ID");
  s->add_flag("--async", o.async, "Print the transaction hash at once; do not wait for the receipt");
  s->add_option("--confirmations", o.confirmations, "Wait until the receipt's block is this deep")
      ->type_name("N")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000}))
      ->capture_default_str();
  s->add_option("--timeout", o.timeout, "Longest wait for the receipt, e.g. 300s (then exit 75)")
      ->type_name("DURATION")
      ->capture_default_str();
}

}  // namespace

void add_send_commands(CLI::App& app, command_table& commands) {
  auto& o = send_opts();
  auto with_args = [&app, &commands](int (*run)()) {
    return [&app, &commands, run] {
      send_opts().args = commands.extra_args(app);
      return run();
    };
  };

  auto* s = app.add_subcommand("send", "Sign and send a transaction; prints its receipt");
  add_rpc_flags(s, o.rpc);
  add_target_flags(s, o);
  add_transaction_flags(s, o);
  commands.add(s, with_args(send_cmd), command_table::takes_extra_args);

  auto* d = app.add_subcommand("deploy", "Deploy a contract; prints its address and the receipt");
  add_rpc_flags(d, o.rpc);
  d->add_option("--bin", o.bin_path, "Creation bytecode as hex (solc's .bin)")->type_name("FILE")->required();
  d->add_option("--abi", o.abi_path, "JSON ABI file: encodes the constructor's ARGS; custom errors decoded")
      ->type_name("FILE");
  d->add_flag("--json-args", o.json_args, "ARGS is one JSON array holding all constructor arguments");
  d->footer("ARGS: the constructor's arguments, one per parameter, as for calldata.");
  add_transaction_flags(d, o);
  commands.add(d, with_args(deploy_cmd), command_table::takes_extra_args);

  auto* e = app.add_subcommand("estimate", "Estimate the gas a transaction would use (eth_estimateGas)");
  add_rpc_flags(e, o.rpc);
  add_target_flags(e, o);
  e->add_option("--from", o.from, "Sender address")->type_name("ADDRESS");
  add_value_flags(e, o);
  commands.add(e, with_args(estimate_cmd), command_table::takes_extra_args);
}

}  // namespace ethcall
