#pragma once
// Helpers shared by the ABI translation units; not part of the public API.

#include "pipekit/eth/abi.hpp"
#include "pipekit/util/utf8.hpp"

namespace pipekit::eth {

// ---- signatures (abi_type.cpp) -------------------------------------------------------------------------

struct parsed_signature {
  abi_function function;
  std::string keyword;  // "function", "event", "error", "constructor" or empty
  bool anonymous = false;
};

parsed_signature parse_signature_full(std::string_view text);
std::string signature_of(std::string_view name, std::span<const abi_param> params);
std::array<std::uint8_t, 4> selector_of(std::string_view signature);

// The array suffixes ("[2][]") of `text` from `pos` to its end applied to `element`, with parse_type's
// grammar, limits and messages. For JSON ABI types such as "tuple[2][]" (pos 5).
abi_type apply_array_suffixes(abi_type element, std::string_view text, std::size_t pos, std::size_t depth);

// A read position in text with the whitespace-skipping token steps of the hand-written parsers
// (signatures and command-line arguments).
struct text_cursor {
  std::string_view text;
  std::size_t pos = 0;

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  void skip_ws() {
    while (pos < text.size() && is_space(text[pos])) ++pos;
  }
  bool at_end() {
    skip_ws();
    return pos == text.size();
  }
  // The next non-blank character, or '\0' at the end.
  char peek() {
    skip_ws();
    return pos < text.size() ? text[pos] : '\0';
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos;
    return true;
  }
};

// ---- values (abi_encode.cpp, abi_decode.cpp) -------------------------------------------------------------

constexpr std::size_t word_size = 32;

inline std::size_t padded(std::size_t n) { return (n + word_size - 1) / word_size * word_size; }

inline std::uint64_t load_be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

inline void store_be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

inline bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

// True when every param has a non-empty name and no two share one (results become objects).
bool all_named(std::span<const abi_param> params);

// Whether an indexed value of this type is stored in its topic as a hash (bytes, string, arrays, tuples).
bool is_hashed_topic(const abi_type& type);

// Valid UTF-8 (util::valid_utf8: RFC 3629, no overlongs, surrogates or code points above U+10FFFF).
inline bool valid_utf8(const std::uint8_t* p, std::size_t n) {
  return util::valid_utf8(std::string_view(reinterpret_cast<const char*>(p), n));
}

// ---- error messages (abi_message.cpp) --------------------------------------------------------------------

// Where a value sits, for error messages. Built on the stack; rendered only when something fails.
struct where {
  enum class step { arg, value, field, element };
  const where* parent;
  step how;
  std::size_t index;
  std::string_view name;
  const abi_type* type;
};

// Throws abi_error "<path>: <what>", e.g. "arg 1 (tuple).b (bytes): odd number of hex digits".
[[noreturn]] void fail(const where* w, std::string_view what);

// User input shown in messages: always valid UTF-8, at most about 80 bytes, and never recursing.
// preview: scalars as compact JSON ("\"abc\"", 12, true, null); arrays and objects by type and size
// ("an array of 3 elements", "an object with 2 members").
std::string preview(const nlohmann::json& v);
// `text` as a JSON string literal, cut to ~80 bytes ("\"abc\"", "\"aaa...").
std::string quote_text(std::string_view text);
// `text` unquoted, cut to ~80 bytes; for text already checked to be digits, signs and dots.
std::string clip_text(std::string_view text);
// One character: 'x' when printable ASCII, else its byte as '\xc3'.
std::string quote_char(char c);

}  // namespace pipekit::eth
