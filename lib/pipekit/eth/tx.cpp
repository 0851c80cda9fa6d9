#include "pipekit/eth/tx.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/format.h>

#include "pipekit/eth/abi.hpp"

namespace pipekit::eth {
namespace {

namespace mp = boost::multiprecision;
using big = mp::uint256_t;
using wide = mp::number<mp::cpp_int_backend<264, 264, mp::unsigned_magnitude, mp::unchecked, void>>;

big to_big(const u256& v) {
  big out;
  mp::import_bits(out, v.be.begin(), v.be.end(), 8, true);
  return out;
}

u256 from_big(const big& v) {
  u256 out;
  std::vector<std::uint8_t> b;
  mp::export_bits(v, std::back_inserter(b), 8, true);
  std::copy(b.begin(), b.end(), out.be.end() - static_cast<std::ptrdiff_t>(b.size()));
  return out;
}

// Minimal big-endian bytes of a big-endian number: leading zeros dropped.
std::span<const std::uint8_t> trimmed(std::span<const std::uint8_t> be) {
  std::size_t i = 0;
  while (i < be.size() && be[i] == 0) ++i;
  return be.subspan(i);
}

// Length prefix: short form offset + len, or long form (offset + 55 + len-of-len) + len.
void append_prefix(bytes& out, std::size_t len, std::uint8_t offset) {
  if (len <= 55) {
    out.push_back(static_cast<std::uint8_t>(offset + len));
    return;
  }
  std::uint8_t be[8];
  int n = 0;
  for (std::size_t v = len; v != 0; v >>= 8) be[n++] = static_cast<std::uint8_t>(v & 0xff);
  out.push_back(static_cast<std::uint8_t>(offset + 55 + n));
  while (n > 0) out.push_back(be[--n]);
}

// One context for the process, randomised against side channels (as libsecp256k1 advises).
class context_holder {
 public:
  context_holder() : ctx_(secp256k1_context_create(SECP256K1_CONTEXT_NONE)) {
    std::array<std::uint8_t, 32> seed{};
    // Without a random seed the context still signs correctly, only with less blinding.
    if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) == 1 && secp256k1_context_randomize(ctx_, seed.data()) != 1)
      throw std::runtime_error("secp256k1: cannot randomise the context");
    OPENSSL_cleanse(seed.data(), seed.size());
  }
  ~context_holder() { secp256k1_context_destroy(ctx_); }
  context_holder(const context_holder&) = delete;
  context_holder& operator=(const context_holder&) = delete;
  const secp256k1_context* get() const { return ctx_; }

 private:
  secp256k1_context* ctx_;
};

const secp256k1_context* context() {
  static const context_holder holder;
  return holder.get();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bytes item(const std::optional<address_bytes>& to) { return to ? rlp::encode_bytes(*to) : rlp::encode_bytes({}); }

}  // namespace

u256 u256::of(std::uint64_t v) noexcept {
  u256 out;
  for (int i = 0; i < 8; ++i) out.be[31 - i] = static_cast<std::uint8_t>(v >> (8 * i));
  return out;
}

std::optional<std::uint64_t> u256::to_u64() const noexcept {
  for (std::size_t i = 0; i < 24; ++i)
    if (be[i] != 0) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 24; i < 32; ++i) v = (v << 8) | be[i];
  return v;
}

u256 suggested_max_fee(const u256& base_fee, const u256& priority_fee) {
  wide sum = wide(to_big(base_fee)) * 2 + wide(to_big(priority_fee));
  if (sum > wide(std::numeric_limits<big>::max())) return from_big(std::numeric_limits<big>::max());
  return from_big(big(sum));
}

u256 parse_u256(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("empty number");
  wide v = 0;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    std::string_view digits = text.substr(2);
    if (digits.empty()) throw std::invalid_argument(fmt::format("\"{}\" has no hex digits", text));
    for (char c : digits) {
      int d = hex_value(c);
      if (d < 0) throw std::invalid_argument(fmt::format("\"{}\" is not a 0x-hex number", text));
      v = v * 16 + d;
      if (v > wide(std::numeric_limits<big>::max())) throw std::invalid_argument(fmt::format("\"{}\" is beyond 2^256-1", text));
    }
  } else {
    for (char c : text) {
      if (c < '0' || c > '9') throw std::invalid_argument(fmt::format("\"{}\" is not a decimal or 0x-hex number", text));
      v = v * 10 + (c - '0');
      if (v > wide(std::numeric_limits<big>::max())) throw std::invalid_argument(fmt::format("\"{}\" is beyond 2^256-1", text));
    }
  }
  return from_big(big(v));
}

std::string quantity_hex(const u256& v) {
  auto digits = trimmed(v.be);
  if (digits.empty()) return "0x0";
  std::string hex = to_hex(digits, false);
  std::size_t lead = hex.find_first_not_of('0');
  return "0x" + hex.substr(lead);
}

std::string decimal(const u256& v) { return to_big(v).str(); }

namespace rlp {

bytes encode_bytes(std::span<const std::uint8_t> data) {
  if (data.size() == 1 && data[0] < 0x80) return bytes{data[0]};
  bytes out;
  out.reserve(data.size() + 9);
  append_prefix(out, data.size(), 0x80);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

bytes encode_uint(const u256& v) { return encode_bytes(trimmed(v.be)); }
bytes encode_uint(std::uint64_t v) { return encode_uint(u256::of(v)); }

bytes encode_list(std::span<const bytes> items) {
  std::size_t len = 0;
  for (const auto& i : items) len += i.size();
  bytes out;
  out.reserve(len + 9);
  append_prefix(out, len, 0xc0);
  for (const auto& i : items) out.insert(out.end(), i.begin(), i.end());
  return out;
}

}  // namespace rlp

private_key::private_key(std::span<const std::uint8_t, 32> secret) {
  std::copy(secret.begin(), secret.end(), secret_.begin());
  const secp256k1_context* ctx = context();
  secp256k1_pubkey pub;
  if (secp256k1_ec_seckey_verify(ctx, secret_.data()) != 1 || secp256k1_ec_pubkey_create(ctx, &pub, secret_.data()) != 1) {
    OPENSSL_cleanse(secret_.data(), secret_.size());
    throw std::invalid_argument("not a valid secp256k1 private key (zero, or not below the curve order)");
  }
  std::array<std::uint8_t, 65> uncompressed{};
  std::size_t len = uncompressed.size();
  secp256k1_ec_pubkey_serialize(ctx, uncompressed.data(), &len, &pub, SECP256K1_EC_UNCOMPRESSED);
  hash256 h = keccak256(std::span<const std::uint8_t>(uncompressed).subspan(1));
  std::copy(h.begin() + 12, h.end(), address_.begin());
}

private_key private_key::from_hex(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  std::array<std::uint8_t, 32> secret{};
  bool ok = text.size() == 64;
  for (std::size_t i = 0; ok && i < 32; ++i) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    secret[i] = static_cast<std::uint8_t>(ok ? hi * 16 + lo : 0);
  }
  if (!ok) {
    OPENSSL_cleanse(secret.data(), secret.size());
    throw std::invalid_argument("not a 32-byte hex private key");
  }
  struct wipe {
    std::array<std::uint8_t, 32>& s;
    ~wipe() { OPENSSL_cleanse(s.data(), s.size()); }
  } w{secret};
  return private_key(secret);
}

private_key::~private_key() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

private_key::private_key(private_key&& other) noexcept : secret_(other.secret_), address_(other.address_) {
  OPENSSL_cleanse(other.secret_.data(), other.secret_.size());
}

private_key& private_key::operator=(private_key&& other) noexcept {
  if (this != &other) {
    secret_ = other.secret_;
    address_ = other.address_;
    OPENSSL_cleanse(other.secret_.data(), other.secret_.size());
  }
  return *this;
}

private_key::signature private_key::sign(const hash256& digest) const {
  const secp256k1_context* ctx = context();
  secp256k1_ecdsa_recoverable_signature sig;
  // RFC 6979 deterministic nonce (the default nonce function): same key and digest, same signature.
  if (secp256k1_ecdsa_sign_recoverable(ctx, &sig, digest.data(), secret_.data(), nullptr, nullptr) != 1)
    throw std::runtime_error("secp256k1: signing failed");
  std::array<std::uint8_t, 64> compact{};
  signature out{};
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, compact.data(), &out.recid, &sig);
  std::copy(compact.begin(), compact.begin() + 32, out.r.begin());
  std::copy(compact.begin() + 32, compact.end(), out.s.begin());
  return out;
}

signed_transaction sign(const transaction& tx, const private_key& key) {
  std::vector<bytes> fields;
  signed_transaction out;
  if (tx.type == transaction::kind::eip1559) {
    fields = {rlp::encode_uint(tx.chain_id), rlp::encode_uint(tx.nonce), rlp::encode_uint(tx.max_priority_fee_per_gas),
              rlp::encode_uint(tx.max_fee_per_gas), rlp::encode_uint(tx.gas), item(tx.to), rlp::encode_uint(tx.value),
              rlp::encode_bytes(tx.data), rlp::encode_list({})};
    bytes payload{0x02};
    bytes list = rlp::encode_list(fields);
    payload.insert(payload.end(), list.begin(), list.end());
    auto sig = key.sign(keccak256(payload));
    fields.push_back(rlp::encode_uint(static_cast<std::uint64_t>(sig.recid)));
    fields.push_back(rlp::encode_bytes(trimmed(sig.r)));
    fields.push_back(rlp::encode_bytes(trimmed(sig.s)));
    out.raw = {0x02};
    list = rlp::encode_list(fields);
    out.raw.insert(out.raw.end(), list.begin(), list.end());
  } else {
    fields = {rlp::encode_uint(tx.nonce), rlp::encode_uint(tx.gas_price), rlp::encode_uint(tx.gas), item(tx.to),
              rlp::encode_uint(tx.value), rlp::encode_bytes(tx.data)};
    std::vector<bytes> unsigned_fields = fields;
    unsigned_fields.push_back(rlp::encode_uint(tx.chain_id));
    unsigned_fields.push_back(rlp::encode_uint(std::uint64_t{0}));
    unsigned_fields.push_back(rlp::encode_uint(std::uint64_t{0}));
    auto sig = key.sign(keccak256(rlp::encode_list(unsigned_fields)));
    big v = big(tx.chain_id) * 2 + 35 + sig.recid;
    fields.push_back(rlp::encode_uint(from_big(v)));
    fields.push_back(rlp::encode_bytes(trimmed(sig.r)));
    fields.push_back(rlp::encode_bytes(trimmed(sig.s)));
    out.raw = rlp::encode_list(fields);
  }
  out.hash = keccak256(out.raw);
  return out;
}

address_bytes create_address(const address_bytes& sender, std::uint64_t nonce) {
  std::vector<bytes> fields = {rlp::encode_bytes(sender), rlp::encode_uint(nonce)};
  hash256 h = keccak256(rlp::encode_list(fields));
  address_bytes out;
  std::copy(h.begin() + 12, h.end(), out.begin());
  return out;
}

address_bytes parse_address(std::string_view text) {
  if (!text.starts_with("0x") || text.size() != 42 || find_non_hex(text.substr(2)) != std::string_view::npos)
    throw std::invalid_argument(fmt::format("\"{}\" is not an address (0x and 40 hex digits)", text));
  address_bytes out;
  decode_hex_digits(text.substr(2), out.data());
  std::string_view digits = text.substr(2);
  bool lower = std::none_of(digits.begin(), digits.end(), [](char c) { return c >= 'A' && c <= 'F'; });
  bool upper = std::none_of(digits.begin(), digits.end(), [](char c) { return c >= 'a' && c <= 'f'; });
  if (!lower && !upper && checksum_address(out) != text)
    throw std::invalid_argument(fmt::format("\"{}\": bad EIP-55 checksum (expected {})", text, checksum_address(out)));
  return out;
}

}  // namespace pipekit::eth
