#pragma once
// Transactions: RLP, secp256k1 private keys, and signing of EIP-1559 (type 2) and legacy EIP-155
// transactions. Quantities are held as 32 big-endian bytes so this header stays light; the
// arithmetic lives in tx.cpp (Boost.Multiprecision).

#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/keccak.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pipekit::eth {

using address_bytes = std::array<std::uint8_t, 20>;

// An unsigned 256-bit quantity (wei, gas, fees), big-endian.
struct u256 {
  std::array<std::uint8_t, 32> be{};

  static u256 of(std::uint64_t v) noexcept;
  // nullopt when the value does not fit in 64 bits.
  std::optional<std::uint64_t> to_u64() const noexcept;
  auto operator<=>(const u256&) const = default;  // big-endian bytes compare as the numbers do
};

// Decimal ("1000") or 0x-hex ("0x3e8") text to a u256. Throws std::invalid_argument saying what is
// wrong (not a number, beyond 2^256-1); the caller names the flag.
u256 parse_u256(std::string_view text);
// "0x3e8" as JSON-RPC quantities are written ("0x0" for zero).
std::string quantity_hex(const u256& v);
std::string decimal(const u256& v);
// EIP-1559 fee suggestion: 2 * base_fee + priority_fee (so the fee holds through six full blocks
// of 12.5% base fee rises), saturating at 2^256-1.
u256 suggested_max_fee(const u256& base_fee, const u256& priority_fee);

// RLP (Ethereum's Recursive Length Prefix), hand-written from the Yellow Paper's appendix B: it is
// a few lines and a library would be a larger dependency than the code.
namespace rlp {
// A byte string item.
bytes encode_bytes(std::span<const std::uint8_t> data);
// An integer item: minimal big-endian bytes (zero is the empty string).
bytes encode_uint(const u256& v);
bytes encode_uint(std::uint64_t v);
// A list of already encoded items.
bytes encode_list(std::span<const bytes> items);
}  // namespace rlp

// A secp256k1 private key: 32 bytes, wiped (OPENSSL_cleanse) on destruction and on move. It has no
// accessor, stream operator or formatter: it can sign and name its address, nothing else.
class private_key {
 public:
  // Throws std::invalid_argument when the bytes are not a valid key (zero, or >= the curve order).
  explicit private_key(std::span<const std::uint8_t, 32> secret);
  // 64 hex digits, an optional 0x, surrounding whitespace ignored. The error never quotes the text:
  // throws std::invalid_argument("not a 32-byte hex private key") or as above.
  static private_key from_hex(std::string_view text);
  ~private_key();
  private_key(private_key&& other) noexcept;
  private_key& operator=(private_key&& other) noexcept;
  private_key(const private_key&) = delete;
  private_key& operator=(const private_key&) = delete;

  // keccak256(uncompressed public key without its 0x04 prefix)[12..32].
  const address_bytes& addr() const noexcept { return address_; }

  struct signature {
    std::array<std::uint8_t, 32> r, s;  // s is low (libsecp256k1 normalises it)
    int recid;                          // 0 or 1: the y parity
  };
  signature sign(const hash256& digest) const;

 private:
  std::array<std::uint8_t, 32> secret_{};
  address_bytes address_{};
};

struct transaction {
  enum class kind { legacy, eip1559 };
  kind type = kind::eip1559;
  std::uint64_t chain_id = 1;
  std::uint64_t nonce = 0;
  u256 max_priority_fee_per_gas;  // eip1559
  u256 max_fee_per_gas;           // eip1559
  u256 gas_price;                 // legacy
  std::uint64_t gas = 0;
  std::optional<address_bytes> to;  // empty: contract creation
  u256 value;
  bytes data;
};

struct signed_transaction {
  bytes raw;     // what eth_sendRawTransaction takes
  hash256 hash;  // keccak256(raw): the transaction hash
};

// EIP-1559: 0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data,
// accessList (empty), yParity, r, s]), signing keccak256 of the same without the signature.
// Legacy: rlp([nonce, gasPrice, gas, to, value, data, v, r, s]) with EIP-155's
// v = chainId * 2 + 35 + recid, signing rlp([... data, chainId, 0, 0]).
signed_transaction sign(const transaction& tx, const private_key& key);

// The address a contract created by `sender` with `nonce` gets: keccak256(rlp([sender, nonce]))[12..].
address_bytes create_address(const address_bytes& sender, std::uint64_t nonce);

// "0x" + 40 hex digits (either case; a mixed-case one must carry a valid EIP-55 checksum).
// Throws std::invalid_argument.
address_bytes parse_address(std::string_view text);

}  // namespace pipekit::eth
