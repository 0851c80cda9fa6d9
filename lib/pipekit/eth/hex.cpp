#include "pipekit/eth/hex.hpp"

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <array>

namespace pipekit::eth {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr std::uint8_t bad_nibble = 0xff;

constexpr std::array<std::uint8_t, 256> make_nibble_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = bad_nibble;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<std::uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::uint8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<std::uint8_t>(c - 'A' + 10);
  return t;
}
constexpr auto nibble_table = make_nibble_table();

}  // namespace

void append_hex(std::string& out, std::span<const std::uint8_t> data) {
  const std::size_t start = out.size();
  out.resize(start + 2 * data.size());
  char* p = out.data() + start;
  for (std::uint8_t b : data) {
    *p++ = hex_digits[b >> 4];
    *p++ = hex_digits[b & 0x0f];
  }
}

std::string to_hex(std::span<const std::uint8_t> data, bool prefix) {
  std::string out;
  out.reserve(2 * data.size() + 2);
  if (prefix) out = "0x";
  append_hex(out, data);
  return out;
}

std::size_t decode_hex_digits(std::string_view digits, std::uint8_t* out) noexcept {
  const std::size_t n = digits.size() / 2;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t hi = nibble_table[static_cast<unsigned char>(digits[2 * i])];
    const std::uint8_t lo = nibble_table[static_cast<unsigned char>(digits[2 * i + 1])];
    if (hi == bad_nibble) return 2 * i;
    if (lo == bad_nibble) return 2 * i + 1;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return std::string_view::npos;
}

std::size_t find_non_hex(std::string_view digits) noexcept {
  for (std::size_t i = 0; i < digits.size(); ++i)
    if (nibble_table[static_cast<unsigned char>(digits[i])] == bad_nibble) return i;
  return std::string_view::npos;
}

bytes from_hex(std::string_view text) {
  std::size_t skip = 0;
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) skip = 2;
  const std::string_view digits = text.substr(skip);
  // Characters first: " 0xab" or "0xabc?" is a bad character, not an odd digit count.
  const std::size_t bad = find_non_hex(digits);
  if (bad != std::string_view::npos) {
    throw abi_error("invalid hex digit " + quote_char(digits[bad]) + " at position " +
                    std::to_string(bad + skip + 1));
  }
  if (digits.size() % 2 != 0) throw abi_error("odd number of hex digits");
  bytes out(digits.size() / 2);
  decode_hex_digits(digits, out.data());
  return out;
}

}  // namespace pipekit::eth
