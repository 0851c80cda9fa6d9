#include "pipekit/eth/transact.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr auto first_poll = std::chrono::milliseconds(50);
constexpr auto max_poll = std::chrono::milliseconds(1000);

// A revert's data, decoded; nullopt when the error carries none.
std::optional<json> revert_data_of(const rpc_error& e, const abi_file* abi) {
  if (!e.data.is_string()) return std::nullopt;
  return revert_of(e.data.get_ref<const std::string&>(), abi);
}

void check_chain(rpc_client& c, std::uint64_t node_chain, const tx_options& o) {
  if (o.chain && *o.chain != node_chain)
    throw error(error_kind::wrong_chain,
                fmt::format("wrong chain: the node at {} is on chain {}, not {}", c.url(), node_chain, *o.chain));
}

// "300s", "1500ms": how long was waited.
std::string shown_duration(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}ms", d.count());
}

[[noreturn]] void timed_out(const std::string& hash, std::string_view waiting_for, std::chrono::milliseconds timeout) {
  throw error(error_kind::timeout,
              fmt::format("{}: no {} within {}; the transaction may still be mined", hash, waiting_for,
                          shown_duration(timeout)),
              hash);
}

}  // namespace

json tx_request::call_object(const std::string& from, const std::optional<u256>& value) const {
  json tx = json::object();
  if (!from.empty()) tx["from"] = from;
  if (to) tx["to"] = to_hex(*to);
  tx["data"] = to_hex(data);
  if (value) tx["value"] = quantity_hex(*value);
  return tx;
}

json revert_of(const std::string& data, const abi_file* abi) {
  try {
    bytes raw;
    try {
      raw = from_hex(data);
    } catch (const abi_error& e) {
      throw abi_error(fmt::format("revert data: {}", e.what()));
    }
    return decode_revert(raw, abi);
  } catch (const abi_error& e) {
    std::string shown = data.size() <= max_shown_revert ? data : fmt::format("{}... ({} characters)", data.substr(0, max_shown_revert), data.size());
    return {{"kind", "undecodable"}, {"error", e.what()}, {"data", std::move(shown)}};
  }
}

u256 node_quantity(const rpc_client& c, std::string_view method, const json& v) {
  if (v.is_string()) {
    try {
      return parse_u256(v.get_ref<const std::string&>());
    } catch (const std::invalid_argument&) {
    }
  }
  throw error(error_kind::response, fmt::format("{}: {} returned {}, not a quantity", c.url(), method, v.dump()));
}

std::uint64_t node_u64(const rpc_client& c, std::string_view method, const json& v) {
  auto q = node_quantity(c, method, v).to_u64();
  if (!q) throw error(error_kind::response, fmt::format("{}: {} returned {}, beyond 64 bits", c.url(), method, v.dump()));
  return *q;
}

std::uint64_t estimate_gas(rpc_client& c, const tx_request& r, const json& call) {
  try {
    return node_u64(c, "eth_estimateGas", c.call("eth_estimateGas", json::array({call})));
  } catch (const rpc_error& e) {
    if (auto revert = revert_data_of(e, r.abi))
      throw error(error_kind::revert,
                  fmt::format("{}: reverts (while estimating gas; nothing was sent): {}", r.what, revert->dump()),
                  e.data.get<std::string>());
    throw error(error_kind::rejected, fmt::format("{}: eth_estimateGas: JSON-RPC error {}: {}", r.what, e.code, e.what()));
  }
}

void set_fees(rpc_client& c, transaction& tx, const tx_options& o) {
  if (tx.type == transaction::kind::legacy) {
    tx.gas_price = o.gas_price ? *o.gas_price : node_quantity(c, "eth_gasPrice", c.call("eth_gasPrice", json::array()));
    return;
  }
  if (o.priority_fee) {
    tx.max_priority_fee_per_gas = *o.priority_fee;
  } else {
    try {
      tx.max_priority_fee_per_gas =
          node_quantity(c, "eth_maxPriorityFeePerGas", c.call("eth_maxPriorityFeePerGas", json::array()));
    } catch (const rpc_error& e) {
      log::debug("eth_maxPriorityFeePerGas: {}; using 1 gwei", e.what());
      tx.max_priority_fee_per_gas = u256::of(fallback_priority_fee);
    }
  }
  if (o.gas_price) {
    tx.max_fee_per_gas = *o.gas_price;
    // A suggested priority fee never exceeds the maximum the user allowed.
    if (!o.priority_fee && tx.max_priority_fee_per_gas > tx.max_fee_per_gas) tx.max_priority_fee_per_gas = tx.max_fee_per_gas;
    return;
  }
  json block = c.call("eth_getBlockByNumber", json::array({"latest", false}));
  if (!block.is_object() || !block.contains("baseFeePerGas"))
    throw error(error_kind::unsupported,
                fmt::format("{}: the latest block has no baseFeePerGas (no EIP-1559 on this chain)", c.url()));
  tx.max_fee_per_gas =
      suggested_max_fee(node_quantity(c, "eth_getBlockByNumber", block["baseFeePerGas"]), tx.max_priority_fee_per_gas);
}

std::string submit(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o) {
  json call = r.call_object(s.from, o.value);
  if (!s.key) {
    if (o.chain) check_chain(c, node_u64(c, "eth_chainId", c.call("eth_chainId", json::array())), o);
    json tx = call;
    tx["gas"] = quantity_hex(u256::of(o.gas ? *o.gas : estimate_gas(c, r, call)));
    if (o.nonce) tx["nonce"] = quantity_hex(u256::of(*o.nonce));
    if (o.legacy)
      tx["gasPrice"] = o.gas_price ? json(quantity_hex(*o.gas_price)) : c.call("eth_gasPrice", json::array());
    else if (o.gas_price)
      tx["maxFeePerGas"] = quantity_hex(*o.gas_price);
    if (o.priority_fee) tx["maxPriorityFeePerGas"] = quantity_hex(*o.priority_fee);
    return c.call("eth_sendTransaction", json::array({tx}), false).get<std::string>();  // a hash: checked by call()
  }
  transaction tx;
  tx.type = o.legacy ? transaction::kind::legacy : transaction::kind::eip1559;
  tx.chain_id = node_u64(c, "eth_chainId", c.call("eth_chainId", json::array()));
  check_chain(c, tx.chain_id, o);
  tx.nonce = o.nonce ? *o.nonce
                     : node_u64(c, "eth_getTransactionCount",
                                c.call("eth_getTransactionCount", json::array({s.from, "pending"})));
  tx.gas = o.gas ? *o.gas : estimate_gas(c, r, call);
  set_fees(c, tx, o);
  tx.to = r.to;
  if (o.value) tx.value = *o.value;
  tx.data = r.data;
  auto signed_tx = sign(tx, *s.key);
  std::string hash = to_hex(signed_tx.hash);
  log::debug("{}: sending {} from {} (nonce {}, gas {})", r.what, hash, checksum_address(s.key->addr()), tx.nonce, tx.gas);
  std::string answer = c.call("eth_sendRawTransaction", json::array({to_hex(signed_tx.raw)}), false).get<std::string>();
  if (answer != hash) log::warn("{}: the node names the transaction {}, not {}", c.url(), answer, hash);
  return answer;
}

json wait_for_receipt(rpc_client& c, const std::string& hash, const wait_options& w) {
  const auto deadline = steady::now() + w.timeout;
  auto pause = first_poll;
  for (;;) {
    json receipt = c.call("eth_getTransactionReceipt", json::array({hash}));
    if (receipt.is_object()) {
      if (w.confirmations <= 1) return receipt;
      std::uint64_t mined = node_u64(c, "eth_getTransactionReceipt", receipt.value("blockNumber", json()));
      std::uint64_t head = node_u64(c, "eth_blockNumber", c.call("eth_blockNumber", json::array()));
      if (head >= mined + w.confirmations - 1) {
        // Still there at that depth (a reorg would have dropped it: then wait again).
        json again = c.call("eth_getTransactionReceipt", json::array({hash}));
        if (again.is_object() && again.value("blockHash", json()) == receipt.value("blockHash", json())) return again;
        continue;
      }
      if (steady::now() + pause > deadline) timed_out(hash, fmt::format("{} confirmations", w.confirmations), w.timeout);
      log::debug("{}: mined in block {}, head {}: waiting for {} confirmations", hash, mined, head, w.confirmations);
    } else if (steady::now() + pause > deadline) {
      timed_out(hash, "receipt", w.timeout);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, max_poll);
  }
}

bool failed(const json& receipt) { return receipt.value("status", json()) == json("0x0"); }

void check_receipt(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o, const json& receipt) {
  if (!failed(receipt)) return;
  const std::string hash = receipt.value("transactionHash", "");
  json sent = c.call("eth_getTransactionByHash", json::array({hash}));
  const std::uint64_t gas = sent.is_object() ? node_u64(c, "eth_getTransactionByHash", sent.value("gas", json())) : 0;
  const json block = receipt.value("blockNumber", json());
  const bool all_gas = receipt.value("gasUsed", json()) == json(quantity_hex(u256::of(gas)));
  std::string why = "replaying it did not fail";
  std::string data;
  bool decoded = false;
  try {
    // Replayed on the state it ran on: the parent of its block (exact when it was the block's first).
    std::uint64_t n = node_u64(c, "eth_getTransactionReceipt", block);
    json call = r.call_object(s.from, o.value);
    call["gas"] = quantity_hex(u256::of(gas));
    c.call("eth_call", json::array({call, quantity_hex(u256::of(n == 0 ? 0 : n - 1))}));
  } catch (const rpc_error& e) {
    if (auto revert = revert_data_of(e, r.abi)) {
      why = revert->dump(), decoded = (*revert)["kind"] != "undecodable";
      data = e.data.get<std::string>();
    } else {
      why = fmt::format("JSON-RPC error {}: {}", e.code, e.what());
    }
  }
  if (all_gas && !decoded) why = fmt::format("out of gas: it used all of its {} gas (replay: {})", gas, why);
  throw error(error_kind::failed,
              fmt::format("{}: transaction {} failed (status 0x0) in block {}: {}", r.what, hash,
                          block.is_string() ? block.get<std::string>() : block.dump(), why),
              data);
}

json send_and_wait(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o, const wait_options& w) {
  json receipt = wait_for_receipt(c, submit(c, r, s, o), w);
  check_receipt(c, r, s, o, receipt);
  return receipt;
}

}  // namespace pipekit::eth
