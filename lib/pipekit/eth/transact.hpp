#pragma once
// Sending a transaction and waiting for it: nonce, gas and fee estimation, signing with a local
// key (tx.hpp) or by the node (eth_sendTransaction), the receipt (at a depth), and why a failed
// one failed. What `ethcall send/deploy/estimate` do, and what generated bindings' `send` calls.
// Errors are eth::error (error.hpp) and rpc_error; nothing here names a flag. Blocking, on the
// caller's thread and rpc_client.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/tx.hpp"

namespace pipekit::eth {

constexpr std::uint64_t fallback_priority_fee = 1'000'000'000;  // 1 gwei, when the node suggests none
constexpr std::size_t max_shown_revert = 2048;                 // characters of undecodable revert data shown

// What the caller fixes; whatever is empty is asked of the node.
struct tx_options {
  // Each member has an initializer, so designated initializers ({.gas = 100000}) leave the others
  // empty without a -Wmissing-field-initializers warning.
  std::optional<u256> value{};
  std::optional<u256> gas_price{};     // EIP-1559: max fee per gas; legacy: the gas price
  std::optional<u256> priority_fee{};  // EIP-1559 only
  std::optional<std::uint64_t> nonce{}, gas{};
  std::optional<std::uint64_t> chain{};  // refuse to send unless the node is on this chain (wrong_chain)
  bool legacy = false;                 // EIP-155 legacy instead of EIP-1559
};

// Who signs: a local key, or (no key) the node itself as `from` (geth/anvil dev accounts).
struct signer {
  std::optional<private_key> key;
  std::string from;  // 0x-lowercase; the key's address when there is a key
};

// What the transaction does.
struct tx_request {
  std::string what;                  // for messages: "send to 0x.. set(uint256)", "deploy"
  std::optional<address_bytes> to;   // empty: contract creation
  bytes data;
  const abi_file* abi = nullptr;     // decodes custom errors of reverts; may be null

  // As eth_call and eth_estimateGas take it.
  nlohmann::json call_object(const std::string& from, const std::optional<u256>& value) const;
};

struct wait_options {
  std::uint64_t confirmations = 1;            // the receipt's block this deep (1: mined)
  std::chrono::milliseconds timeout{300000};  // then error(timeout)
};

// A revert's data (0x-hex), decoded with abi's custom errors (abi may be null); data that cannot
// be decoded: {"kind":"undecodable","error":"..","data":"0x.."}, the data cut to max_shown_revert
// characters. A revert is a revert whatever its data holds.
nlohmann::json revert_of(const std::string& data, const abi_file* abi);

// A quantity the node returned for `method`; error(response) when it is not one (or, for the
// u64 form, beyond 64 bits).
u256 node_quantity(const rpc_client& c, std::string_view method, const nlohmann::json& v);
std::uint64_t node_u64(const rpc_client& c, std::string_view method, const nlohmann::json& v);

// eth_estimateGas of `call`. A revert is error(revert) with the decoded reason in the message and
// the raw data as subject(); another JSON-RPC error is error(rejected).
std::uint64_t estimate_gas(rpc_client& c, const tx_request& r, const nlohmann::json& call);

// Fees of a locally signed transaction: as given, or suggested by the node (EIP-1559: 2 x base fee
// + priority fee; error(unsupported) when the chain has no base fee).
void set_fees(rpc_client& c, transaction& tx, const tx_options& o);

// Signs (or has the node sign), sends, returns the transaction hash. error(wrong_chain) when
// o.chain is not the node's.
std::string submit(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o);

// Polls for the receipt until it is w.confirmations deep (a reorg that drops it meanwhile: waits
// again). error(timeout) with the hash as subject() when w.timeout passes first.
nlohmann::json wait_for_receipt(rpc_client& c, const std::string& hash, const wait_options& w);

// Whether a receipt says the transaction failed (status 0x0).
bool failed(const nlohmann::json& receipt);

// Throws error(failed) for a failed receipt, saying why when replaying it at its block reveals a
// reason (the decoded revert; out of gas when it used all its gas). Returns for a successful one.
void check_receipt(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o,
                   const nlohmann::json& receipt);

// submit, wait_for_receipt, check_receipt: the receipt of a successful transaction.
nlohmann::json send_and_wait(rpc_client& c, const tx_request& r, const signer& s, const tx_options& o,
                             const wait_options& w = {});

}  // namespace pipekit::eth
