// ethcall's transaction commands: send, deploy, estimate. Transactions are signed here with a key
// from a file, ETH_PRIVATE_KEY or a keystore (lib/pipekit/eth/tx.hpp, keystore.hpp), or by the
// node itself (--unlocked). No secret is ever printed or logged: the key object cannot be.
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/keystore.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/tx.hpp"
#include "pipekit/eth_cli/errors.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
namespace log = pipekit::log;
using pipekit::fatal;
using steady = std::chrono::steady_clock;

constexpr const char* key_env = "ETH_PRIVATE_KEY";
constexpr std::uint64_t fallback_priority_fee = 1'000'000'000;  // 1 gwei, when the node cannot suggest one
constexpr auto first_poll = std::chrono::milliseconds(50);
constexpr auto max_poll = std::chrono::milliseconds(1000);

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

send_cmds& opts() {
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
  std::optional<eth::u256> value, gas_price, priority;
  std::optional<std::uint64_t> nonce, gas, chain;
  std::chrono::milliseconds timeout{};
};

tx_flags parse_tx_flags() {
  const auto& o = opts();
  tx_flags f;
  if (!o.value.empty()) f.value = u256_flag(o.value, "--value");
  if (!o.gas_price.empty()) f.gas_price = u256_flag(o.gas_price, "--gas-price");
  if (!o.priority_gas_price.empty()) {
    if (o.legacy) fatal(exit_code::usage, "--priority-gas-price: legacy transactions have no priority fee (--legacy)");
    f.priority = u256_flag(o.priority_gas_price, "--priority-gas-price");
  }
  f.nonce = u64_flag(o.nonce, "--nonce");
  f.gas = u64_flag(o.gas_limit, "--gas-limit");
  f.chain = u64_flag(o.chain, "--chain");
  try {
    f.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(pipekit::util::parse_duration(o.timeout));
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "--timeout: {}", e.what());
  }
  return f;
}

// ---- the signer: a local key, or the node (--unlocked) -----------------------------------------

struct signer {
  std::optional<eth::private_key> key;  // empty: the node signs
  std::string from;                     // 0x-lowercase
};

signer load_signer() {
  const auto& o = opts();
  const char* env = std::getenv(key_env);
  signer s;
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

// ---- talking to the node ------------------------------------------------------------------------

eth::u256 node_quantity(const eth::rpc_client& c, std::string_view method, const json& v) {
  if (v.is_string()) {
    try {
      return eth::parse_u256(v.get_ref<const std::string&>());
    } catch (const std::invalid_argument&) {
    }
  }
  fatal(exit_code::unavailable, "{}: {} returned {}, not a quantity", c.url(), method, v.dump());
}

std::uint64_t node_u64(const eth::rpc_client& c, std::string_view method, const json& v) {
  auto q = node_quantity(c, method, v).to_u64();
  if (!q) fatal(exit_code::unavailable, "{}: {} returned {}, beyond 64 bits", c.url(), method, v.dump());
  return *q;
}

// A revert's data, decoded; nullopt when the error carries none.
std::optional<json> revert_data_of(const eth::rpc_error& e, const eth::abi_file* abi) {
  if (!e.data.is_string()) return std::nullopt;
  return ethcall::revert_of(e.data.get_ref<const std::string&>(), abi);
}

// What the transaction does, as eth_call and eth_estimateGas take it.
struct request {
  std::string what;               // for messages: "send to 0x.. set(uint256)", "deploy"
  std::optional<eth::address_bytes> to; // empty: contract creation
  eth::bytes data;
  const eth::abi_file* abi = nullptr;

  json call_object(const std::string& from, const std::optional<eth::u256>& value) const {
    json tx = json::object();
    if (!from.empty()) tx["from"] = from;
    if (to) tx["to"] = eth::to_hex(*to);
    tx["data"] = hex_of(data);
    if (value) tx["value"] = eth::quantity_hex(*value);
    return tx;
  }
};

std::uint64_t estimate_gas(eth::rpc_client& c, const request& r, const json& call) {
  try {
    return node_u64(c, "eth_estimateGas", c.call("eth_estimateGas", json::array({call})));
  } catch (const eth::rpc_error& e) {
    if (auto revert = revert_data_of(e, r.abi))
      fatal(exit_code::failure, "{}: reverts (while estimating gas; nothing was sent): {}", r.what, revert->dump());
    fatal(exit_code::failure, "{}: eth_estimateGas: JSON-RPC error {}: {}", r.what, e.code, e.what());
  }
}

void check_chain(eth::rpc_client& c, std::uint64_t node_chain, const tx_flags& f) {
  if (f.chain && *f.chain != node_chain)
    fatal(exit_code::config, "wrong chain: the node at {} is on chain {}, not {} (--chain)", c.url(), node_chain, *f.chain);
}

// Fees of a locally signed transaction: given, or suggested by the node.
void set_fees(eth::rpc_client& c, eth::transaction& tx, const tx_flags& f) {
  if (tx.type == eth::transaction::kind::legacy) {
    tx.gas_price = f.gas_price ? *f.gas_price : node_quantity(c, "eth_gasPrice", c.call("eth_gasPrice", json::array()));
    return;
  }
  if (f.priority) {
    tx.max_priority_fee_per_gas = *f.priority;
  } else {
    try {
      tx.max_priority_fee_per_gas =
          node_quantity(c, "eth_maxPriorityFeePerGas", c.call("eth_maxPriorityFeePerGas", json::array()));
    } catch (const eth::rpc_error& e) {
      log::debug("eth_maxPriorityFeePerGas: {}; using 1 gwei", e.what());
      tx.max_priority_fee_per_gas = eth::u256::of(fallback_priority_fee);
    }
  }
  if (f.gas_price) {
    tx.max_fee_per_gas = *f.gas_price;
    // A suggested priority fee never exceeds the maximum the user allowed.
    if (!f.priority && tx.max_priority_fee_per_gas > tx.max_fee_per_gas) tx.max_priority_fee_per_gas = tx.max_fee_per_gas;
    return;
  }
  json block = c.call("eth_getBlockByNumber", json::array({"latest", false}));
  if (!block.is_object() || !block.contains("baseFeePerGas"))
    fatal(exit_code::failure, "{}: the latest block has no baseFeePerGas (no EIP-1559 on this chain); use --legacy",
          c.url());
  tx.max_fee_per_gas =
      eth::suggested_max_fee(node_quantity(c, "eth_getBlockByNumber", block["baseFeePerGas"]), tx.max_priority_fee_per_gas);
}

std::string submit(eth::rpc_client& c, const request& r, const signer& s, const tx_flags& f) {
  const auto& o = opts();
  json call = r.call_object(s.from, f.value);
  if (!s.key) {
    if (f.chain) check_chain(c, node_u64(c, "eth_chainId", c.call("eth_chainId", json::array())), f);
    json tx = call;
    tx["gas"] = eth::quantity_hex(eth::u256::of(f.gas ? *f.gas : estimate_gas(c, r, call)));
    if (f.nonce) tx["nonce"] = eth::quantity_hex(eth::u256::of(*f.nonce));
    if (o.legacy)
      tx["gasPrice"] = f.gas_price ? json(eth::quantity_hex(*f.gas_price)) : c.call("eth_gasPrice", json::array());
    else if (f.gas_price)
      tx["maxFeePerGas"] = eth::quantity_hex(*f.gas_price);
    if (f.priority) tx["maxPriorityFeePerGas"] = eth::quantity_hex(*f.priority);
    return c.call("eth_sendTransaction", json::array({tx}), false).get<std::string>();  // a hash: checked by call()
  }
  eth::transaction tx;
  tx.type = o.legacy ? eth::transaction::kind::legacy : eth::transaction::kind::eip1559;
  tx.chain_id = node_u64(c, "eth_chainId", c.call("eth_chainId", json::array()));
  check_chain(c, tx.chain_id, f);
  tx.nonce = f.nonce ? *f.nonce
                     : node_u64(c, "eth_getTransactionCount",
                                c.call("eth_getTransactionCount", json::array({s.from, "pending"})));
  tx.gas = f.gas ? *f.gas : estimate_gas(c, r, call);
  set_fees(c, tx, f);
  tx.to = r.to;
  if (f.value) tx.value = *f.value;
  tx.data = r.data;
  auto signed_tx = eth::sign(tx, *s.key);
  std::string hash = eth::to_hex(signed_tx.hash);
  log::debug("{}: sending {} from {} (nonce {}, gas {})", r.what, hash, eth::checksum_address(s.key->addr()), tx.nonce, tx.gas);
  std::string answer = c.call("eth_sendRawTransaction", json::array({hex_of(signed_tx.raw)}), false).get<std::string>();
  if (answer != hash) log::warn("{}: the node names the transaction {}, not {}", c.url(), answer, hash);
  return answer;
}

// ---- waiting for the receipt ------------------------------------------------------------------

[[noreturn]] void timed_out(const std::string& hash, std::string_view waiting_for) {
  fatal(exit_code::temp_fail,
        "{}: no {} within --timeout {}; the transaction may still be mined: check with 'ethcall receipt {}'", hash,
        waiting_for, opts().timeout, hash);
}

json wait_for_receipt(eth::rpc_client& c, const std::string& hash, steady::time_point deadline) {
  auto pause = first_poll;
  for (;;) {
    json receipt = c.call("eth_getTransactionReceipt", json::array({hash}));
    if (receipt.is_object()) {
      if (opts().confirmations <= 1) return receipt;
      std::uint64_t mined = node_u64(c, "eth_getTransactionReceipt", receipt.value("blockNumber", json()));
      std::uint64_t head = node_u64(c, "eth_blockNumber", c.call("eth_blockNumber", json::array()));
      if (head >= mined + opts().confirmations - 1) {
        // Still there at that depth (a reorg would have dropped it: then wait again).
        json again = c.call("eth_getTransactionReceipt", json::array({hash}));
        if (again.is_object() && again.value("blockHash", json()) == receipt.value("blockHash", json())) return again;
        continue;
      }
      if (steady::now() + pause > deadline) timed_out(hash, fmt::format("{} confirmations", opts().confirmations));
      log::debug("{}: mined in block {}, head {}: waiting for {} confirmations", hash, mined, head, opts().confirmations);
    } else if (steady::now() + pause > deadline) {
      timed_out(hash, "receipt");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, max_poll);
  }
}

// A failed transaction: says why when replaying it reveals a reason. The receipt is already out.
[[noreturn]] void failed(eth::rpc_client& c, const request& r, const signer& s, const tx_flags& f, const json& receipt,
                         std::uint64_t gas) {
  const std::string hash = receipt.value("transactionHash", "");
  const json block = receipt.value("blockNumber", json());
  const bool all_gas = receipt.value("gasUsed", json()) == json(eth::quantity_hex(eth::u256::of(gas)));
  std::string why = "replaying it did not fail";
  bool decoded = false;
  try {
    // Replayed on the state it ran on: the parent of its block (exact when it was the block's first).
    std::uint64_t n = node_u64(c, "eth_getTransactionReceipt", block);
    json call = r.call_object(s.from, f.value);
    call["gas"] = eth::quantity_hex(eth::u256::of(gas));
    c.call("eth_call", json::array({call, eth::quantity_hex(eth::u256::of(n == 0 ? 0 : n - 1))}));
  } catch (const eth::rpc_error& e) {
    if (auto revert = revert_data_of(e, r.abi)) why = revert->dump(), decoded = (*revert)["kind"] != "undecodable";
    else why = fmt::format("JSON-RPC error {}: {}", e.code, e.what());
  }
  if (all_gas && !decoded) why = fmt::format("out of gas: it used all of its {} gas (replay: {})", gas, why);
  fatal(exit_code::failure, "{}: transaction {} failed (status 0x0) in block {}: {}", r.what, hash,
        block.is_string() ? block.get<std::string>() : block.dump(), why);
}

// Signs (or has the node sign), sends, waits, prints. `shape` makes the output record.
int transact(const request& r, const std::function<json(const json&)>& shape) {
  const auto& o = opts();
  tx_flags f = parse_tx_flags();
  signer s = load_signer();
  auto c = o.rpc.connect();
  std::string hash = submit(c, r, s, f);
  if (o.async) {
    common_flags text;
    text.bare_text = true;
    return print_result(hash, text);
  }
  json receipt = wait_for_receipt(c, hash, steady::now() + f.timeout);
  print_result(shape(receipt), common_flags{});
  if (receipt.value("status", json()) == json("0x0")) {
    json tx = c.call("eth_getTransactionByHash", json::array({hash}));
    std::uint64_t gas = tx.is_object() ? node_u64(c, "eth_getTransactionByHash", tx.value("gas", json())) : 0;
    failed(c, r, s, f, receipt, gas);
  }
  return exit_code::ok;
}

// ---- the commands -------------------------------------------------------------------------------

// TO SIG ARGS (or TO with --abi FUNCTION ARGS); no SIG: plain transfer, no data.
request call_request(const char* verb, const std::optional<eth::abi_file>& abi) {
  const auto& o = opts();
  request r;
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
  auto abi = load_abi(opts().abi_path);
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
  const auto& o = opts();
  auto abi = load_abi(o.abi_path);
  request r;
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
  const auto& o = opts();
  auto abi = load_abi(o.abi_path);
  request r = call_request("estimate", abi);
  std::optional<eth::u256> value;
  if (!o.value.empty()) value = u256_flag(o.value, "--value");
  std::string from = o.from.empty() ? std::string() : eth::to_hex(address_arg(o.from, "--from"));
  auto c = o.rpc.connect();
  return print_result(json(estimate_gas(c, r, r.call_object(from, value))), common_flags{});
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
  auto& o = opts();
  auto with_args = [&app, &commands](int (*run)()) {
    return [&app, &commands, run] {
      opts().args = commands.extra_args(app);
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
