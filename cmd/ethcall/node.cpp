// ethcall's node commands: rpc, chain-id, block-number, balance, nonce, block, tx, receipt, call.
// Records from the node (blocks, transactions, receipts) pass through as the node wrote them.
#include <charconv>
#include <cstdlib>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/util/parse.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
using pipekit::fatal;

struct node_cmds {
  rpc_flags rpc;
  common_flags common;
  std::string method, params = "[]";
  std::string address, hash, block = "latest";
  // call
  std::string to, sig, abi_path, from, value;
  bool raw = false, json_args = false;
  std::vector<std::string> args;
};

node_cmds& opts() {
  static node_cmds o;
  return o;
}

int rpc_cmd() {
  auto& o = opts();
  auto p = pipekit::json::parse(o.params);
  if (!p.ok() || !p.value.is_array()) fatal(exit_code::usage, "PARAMS: {}", p.ok() ? "must be a JSON array" : p.error);
  auto c = o.rpc.connect();
  return print_result(c.call(o.method, std::move(p.value), false), o.common);
}

int quantity_cmd(const char* method, json params) {
  auto c = opts().rpc.connect();
  return print_result(eth::quantity_to_json(c.call(method, std::move(params))), opts().common);
}

int call_cmd() {
  auto& o = opts();
  auto abi = load_abi(o.abi_path);
  const eth::abi_function fn =
      abi ? abi->function(o.sig, o.json_args ? std::nullopt : std::optional<std::size_t>(o.args.size()))
          : eth::parse_signature(o.sig);
  json tx = {{"to", o.to}, {"data", hex_of(eth::encode_call(fn, cli_args(fn.inputs, o.args, o.json_args)))}};
  if (!o.from.empty()) tx["from"] = o.from;
  if (!o.value.empty()) tx["value"] = o.value;
  auto c = o.rpc.connect();
  json result;
  try {
    result = c.call("eth_call", json::array({tx, block_param(o.block)}));
  } catch (const eth::rpc_error& e) {
    if (e.data.is_string()) {
      json revert = revert_of(e.data.get_ref<const std::string&>(), abi ? &*abi : nullptr);
      fatal(exit_code::failure, "call to {} {} reverted: {}", o.to, fn.signature(), revert.dump());
    }
    throw;
  }
  const std::string& hex = result.get_ref<const std::string&>();
  if (o.raw || fn.outputs.empty()) {
    common_flags text = o.common;
    text.bare_text = true;
    return print_result(hex, text);
  }
  return print_result(eth::shape_result(fn.outputs, eth::decode(fn.outputs, hex_arg(hex, "result"))), o.common);
}

}  // namespace

void add_node_commands(CLI::App& app, command_table& commands) {
  auto& o = opts();
  auto sub = [&](const char* name, const char* help) {
    auto* s = app.add_subcommand(name, help);
    add_rpc_flags(s, o.rpc);
    return s;
  };

  auto* r = sub("rpc", "Send any JSON-RPC request; prints its result");
  r->add_option("METHOD", o.method, "Method, e.g. eth_getLogs")->required();
  r->add_option("PARAMS", o.params, "Parameters as one JSON array")->capture_default_str();
  commands.add(r, rpc_cmd);

  commands.add(sub("chain-id", "The node's chain id"), [] { return quantity_cmd("eth_chainId", json::array()); });
  commands.add(sub("block-number", "The latest block number"), [] { return quantity_cmd("eth_blockNumber", json::array()); });

  auto* b = sub("balance", "Balance of an address, in wei");
  b->add_option("ADDRESS", o.address, "0x address")->required();
  b->add_option("--block,-B", o.block, "Block number or tag")->capture_default_str();
  commands.add(b, [] { return quantity_cmd("eth_getBalance", json::array({opts().address, block_param(opts().block)})); });

  auto* n = sub("nonce", "Transaction count of an address");
  n->add_option("ADDRESS", o.address, "0x address")->required();
  n->add_option("--block,-B", o.block, "Block number or tag")->capture_default_str();
  commands.add(n, [] { return quantity_cmd("eth_getTransactionCount", json::array({opts().address, block_param(opts().block)})); });

  auto* bl = sub("block", "A block (header and transaction hashes), as the node returns it");
  bl->add_option("BLOCK", o.block, "Block number or tag")->capture_default_str();
  commands.add(bl, [] {
    auto c = opts().rpc.connect();
    return print_result(c.call("eth_getBlockByNumber", json::array({block_param(opts().block), false})), opts().common);
  });

  auto by_hash = [&](const char* name, const char* help, const char* method) {
    auto* s = sub(name, help);
    s->add_option("HASH", o.hash, "Transaction hash")->required();
    commands.add(s, [method] {
      auto c = opts().rpc.connect();
      json result = c.call(method, json::array({opts().hash}));
      if (result.is_null()) fatal(exit_code::failure, "{}: no transaction {}", c.url(), opts().hash);
      return print_result(result, opts().common);
    });
  };
  by_hash("tx", "A transaction, as the node returns it", "eth_getTransactionByHash");
  by_hash("receipt", "A transaction's receipt, as the node returns it", "eth_getTransactionReceipt");

  auto* c = sub("call", "Call a contract function without a transaction (eth_call); prints the decoded result");
  c->add_option("TO", o.to, "Contract address")->required();
  c->add_option("SIG", o.sig, "Signature with outputs, e.g. 'get()(uint256)', or a name with --abi")->required();
  c->add_option("--abi", o.abi_path, "JSON ABI file: SIG is a function name; custom errors decoded")->type_name("FILE");
  c->add_option("--block,-B", o.block, "Block number or tag")->capture_default_str();
  c->add_option("--from", o.from, "Caller address")->type_name("ADDRESS");
  c->add_option("--value", o.value, "Value sent with the call, in wei (0x-hex quantity)")->type_name("WEI");
  c->add_flag("--raw", o.raw, "Print the returned data as hex, undecoded");
  c->add_flag("--json-args", o.json_args, "ARGS is one JSON array holding all arguments");
  c->footer("ARGS: one per parameter after SIG, as for calldata.");
  commands.add(c, [&app, &commands] {
    opts().args = commands.extra_args(app);
    return call_cmd();
  }, command_table::takes_extra_args);
}

}  // namespace ethcall
