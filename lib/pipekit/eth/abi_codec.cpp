// ABI head/tail encoding and strict decoding between JSON values and bytes.

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <boost/multiprecision/cpp_int.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace pipekit::eth {
namespace {

namespace mp = boost::multiprecision;
using json = nlohmann::json;

constexpr std::size_t word_size = 32;
constexpr std::uint64_t max_safe_integer = 9007199254740992ULL;  // 2^53: larger integers become strings
constexpr std::size_t max_decimal_digits = 78;                   // 2^256 has 78 decimal digits

std::size_t padded(std::size_t n) { return (n + word_size - 1) / word_size * word_size; }

// Where a value sits, for error messages. Built on the stack; rendered only when something fails.
struct where {
  enum class step { arg, value, field, element };
  const where* parent;
  step how;
  std::size_t index;
  std::string_view name;
  const abi_type* type;
};

void describe(std::string& out, const where* w) {
  if (w == nullptr) return;
  describe(out, w->parent);
  switch (w->how) {
    case where::step::arg: out += "arg " + std::to_string(w->index + 1); break;
    case where::step::value: out += "value " + std::to_string(w->index + 1); break;
    case where::step::field:
      out += '.';
      out += w->name.empty() ? std::to_string(w->index) : std::string(w->name);
      break;
    case where::step::element: out += '[' + std::to_string(w->index) + ']'; break;
  }
  out += " (" + w->type->json_type() + ")";
}

[[noreturn]] void fail(const where* w, std::string_view what) {
  std::string msg;
  describe(msg, w);
  if (!msg.empty()) msg += ": ";
  msg += what;
  throw abi_error(msg);
}

std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

std::uint64_t load_be64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

void store_be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

bool all_ff(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != 0xff) return false;
  return true;
}

// Strips "0x"/"0X"; returns false when absent.
bool strip_0x(std::string_view& s) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    return true;
  }
  return false;
}

// ---- integers ---------------------------------------------------------------------------------------

// Writes the two's complement 256-bit word of (negative ? -magnitude : magnitude) after checking it fits
// the type. `magnitude` is a big-endian 32-byte word; `text` shows the value in the error.
void put_checked_int(std::uint8_t* out, const std::uint8_t* magnitude, bool negative, unsigned bits,
                     bool is_signed, const where* w, const json& shown_value) {
  // bit length of the magnitude
  std::size_t first = 0;
  while (first < word_size && magnitude[first] == 0) ++first;
  unsigned len = 0;
  if (first < word_size) {
    len = static_cast<unsigned>((word_size - first - 1) * 8);
    for (unsigned b = magnitude[first]; b != 0; b >>= 1) ++len;
  }
  bool ok;
  if (!is_signed) {
    ok = !negative || len == 0;
    ok = ok && len <= bits;
  } else if (!negative) {
    ok = len <= bits - 1;
  } else {
    // -2^(bits-1) is the one value with bit length `bits` that fits.
    bool is_min = len == bits;
    if (is_min) {
      const std::size_t top = word_size - bits / 8;  // byte holding bit bits-1
      is_min = magnitude[top] == 0x80 && all_zero(magnitude + top + 1, word_size - top - 1);
    }
    ok = len <= bits - 1 || is_min;
  }
  if (!ok) fail(w, (shown_value.is_string() ? shown_value.get<std::string>() : shown(shown_value)) + " is out of range");
  if (!negative || len == 0) {
    std::memcpy(out, magnitude, word_size);
    return;
  }
  // two's complement: invert and add one
  unsigned carry = 1;
  for (int i = word_size - 1; i >= 0; --i) {
    const unsigned v = static_cast<unsigned>(static_cast<std::uint8_t>(~magnitude[i])) + carry;
    out[i] = static_cast<std::uint8_t>(v);
    carry = v >> 8;
  }
}

// Parses decimal digits (no sign) into a big-endian 32-byte magnitude; false when too large or not digits.
bool parse_decimal(std::string_view digits, std::uint8_t* mag) {
  if (digits.empty()) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  std::memset(mag, 0, word_size);
  if (digits.size() <= 19) {
    std::uint64_t v = 0;
    for (char c : digits) v = v * 10 + static_cast<std::uint64_t>(c - '0');
    store_be64(mag + 24, v);
    return true;
  }
  if (digits.size() > max_decimal_digits) return false;
  mp::uint512_t v(std::string(digits).c_str());
  if (v > mp::uint512_t(std::numeric_limits<mp::uint256_t>::max())) return false;
  std::uint8_t buf[64] = {};
  std::uint8_t* end = mp::export_bits(v, buf, 8);
  const std::size_t n = static_cast<std::size_t>(end - buf);
  std::memcpy(mag + word_size - n, buf, n);
  return true;
}

bool parse_hex_magnitude(std::string_view digits, std::uint8_t* mag) {
  if (digits.empty()) return false;
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  if (digits.size() > 64) return false;
  std::memset(mag, 0, word_size);
  char buf[64];
  std::size_t n = 0;
  if (digits.size() % 2 != 0) buf[n++] = '0';
  std::memcpy(buf + n, digits.data(), digits.size());
  n += digits.size();
  return decode_hex_digits(std::string_view(buf, n), mag + word_size - n / 2) == std::string_view::npos;
}

bool is_digits(std::string_view s, bool hex) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') ||
                    (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
    if (!ok) return false;
  }
  return true;
}

// Encodes an integer JSON value (number, decimal or 0x-hex string, optional '-') as uintN/intN.
void put_int(std::uint8_t* out, const json& v, unsigned bits, bool is_signed, const where* w) {
  std::uint8_t mag[word_size];
  bool negative = false;
  switch (v.type()) {
    case json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      std::memset(mag, 0, 24);
      store_be64(mag + 24, u);
      break;
    }
    case json::value_t::number_integer: {
      const auto i = v.get<std::int64_t>();
      negative = i < 0;
      const std::uint64_t m = negative ? ~static_cast<std::uint64_t>(i) + 1 : static_cast<std::uint64_t>(i);
      std::memset(mag, 0, 24);
      store_be64(mag + 24, m);
      break;
    }
    case json::value_t::string: {
      std::string_view body = v.get_ref<const std::string&>();
      if (!body.empty() && body[0] == '-') {
        negative = true;
        body.remove_prefix(1);
      }
      const bool hex = strip_0x(body);
      if (!is_digits(body, hex)) {
        fail(w, shown(v) + " is not an integer (expected decimal or 0x-hex digits)");
      }
      if (!(hex ? parse_hex_magnitude(body, mag) : parse_decimal(body, mag))) {
        fail(w, v.get<std::string>() + " is out of range");
      }
      break;
    }
    case json::value_t::number_float:
      fail(w, shown(v) + " is not an integer; pass big integers as decimal strings");
    default: fail(w, "expected an integer, got " + shown(v));
  }
  put_checked_int(out, mag, negative, bits, is_signed, w, v);
}

// Encodes fixedMxN/ufixedMxN from a decimal string ("1.25") or a JSON integer.
void put_fixed(std::uint8_t* out, const json& v, const abi_type& t, const where* w) {
  std::string digits;
  bool negative = false;
  if (v.is_number_integer()) {
    const std::string s = v.dump();
    negative = s[0] == '-';
    digits = negative ? s.substr(1) : s;
    digits.append(t.decimals, '0');
  } else if (v.is_string()) {
    std::string_view s = v.get_ref<const std::string&>();
    if (!s.empty() && s[0] == '-') {
      negative = true;
      s.remove_prefix(1);
    }
    const auto dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    const std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    const bool ok = (whole.empty() || is_digits(whole, false)) && (frac.empty() || is_digits(frac, false)) &&
                    !(whole.empty() && frac.empty());
    if (!ok) fail(w, shown(v) + " is not a decimal number");
    if (frac.size() > t.decimals) {
      fail(w, shown(v) + " has more than " + std::to_string(t.decimals) + " decimals");
    }
    digits = std::string(whole) + std::string(frac);
    digits.append(t.decimals - frac.size(), '0');
  } else if (v.is_number_float()) {
    fail(w, shown(v) + ": pass fixed-point values as decimal strings");
  } else {
    fail(w, "expected a decimal string, got " + shown(v));
  }
  std::uint8_t mag[word_size];
  if (!parse_decimal(digits, mag)) fail(w, shown(v) + " is out of range");
  put_checked_int(out, mag, negative, t.bits, t.kind == abi_kind::fixed, w, v);
}

// Decimal text of a big-endian 32-byte two's complement (is_signed) or unsigned word.
std::string word_to_decimal(const std::uint8_t* p, bool is_signed) {
  const bool negative = is_signed && (p[0] & 0x80) != 0;
  if (!negative && all_zero(p, 24)) return std::to_string(load_be64(p + 24));
  if (negative && all_ff(p, 24) && (p[24] & 0x80) != 0) {
    return std::to_string(static_cast<std::int64_t>(load_be64(p + 24)));
  }
  mp::uint256_t v;
  mp::import_bits(v, p, p + word_size, 8);
  if (!negative) return v.str();
  v = ~v + 1;
  return "-" + v.str();
}

// JSON of an integer word already checked against its width: number when |v| < 2^53, else decimal string.
json word_to_json(const std::uint8_t* p, bool is_signed) {
  const bool negative = is_signed && (p[0] & 0x80) != 0;
  if (!negative && all_zero(p, 24)) {
    const std::uint64_t u = load_be64(p + 24);
    if (u < max_safe_integer) return json(u);
    return json(std::to_string(u));
  }
  if (negative && all_ff(p, 24) && (p[24] & 0x80) != 0) {
    const auto i = static_cast<std::int64_t>(load_be64(p + 24));
    if (i > -static_cast<std::int64_t>(max_safe_integer)) return json(i);
    return json(std::to_string(i));
  }
  return json(word_to_decimal(p, is_signed));
}

// ---- hex helpers --------------------------------------------------------------------------------------

std::string hex_string(const std::uint8_t* p, std::size_t n) {
  std::string s;
  s.reserve(2 + 2 * n);
  s = "0x";
  append_hex(s, std::span(p, n));
  return s;
}

// Digits of a 0x-hex JSON string (prefix optional), checked for even length.
std::string_view hex_digits_of(const json& v, const where* w) {
  if (!v.is_string()) fail(w, "expected a 0x-hex string, got " + shown(v));
  std::string_view s = v.get_ref<const std::string&>();
  strip_0x(s);
  if (s.size() % 2 != 0) fail(w, "odd number of hex digits");
  return s;
}

void decode_hex_or_fail(std::string_view digits, std::uint8_t* out, const where* w) {
  const std::size_t bad = decode_hex_digits(digits, out);
  if (bad != std::string_view::npos) {
    fail(w, "invalid hex digit '" + std::string(1, digits[bad]) + "'");
  }
}

void put_fixed_bytes(std::uint8_t* out, const json& v, std::size_t n, const where* w) {
  const std::string_view digits = hex_digits_of(v, w);
  if (digits.size() != 2 * n) {
    fail(w, "expected " + std::to_string(n) + " bytes, got " + std::to_string(digits.size() / 2));
  }
  decode_hex_or_fail(digits, out, w);
}

void put_address(std::uint8_t* out, const json& v, const where* w) {
  if (!v.is_string()) fail(w, "expected an address string, got " + shown(v));
  const std::string& s = v.get_ref<const std::string&>();
  std::string_view h = s;
  if (!strip_0x(h) || h.size() != 40) fail(w, shown(v) + " is not an address (0x and 40 hex digits)");
  std::memset(out, 0, 12);
  decode_hex_or_fail(h, out + 12, w);
  bool upper = false, lower = false;
  for (char c : h) {
    upper = upper || (c >= 'A' && c <= 'F');
    lower = lower || (c >= 'a' && c <= 'f');
  }
  if (upper && lower) {
    const std::string expected = checksum_address(std::span<const std::uint8_t, 20>(out + 12, 20));
    if (std::string_view(expected).substr(2) != h) {
      fail(w, "bad EIP-55 checksum in address " + s + " (expected " + expected + ")");
    }
  }
}

// Valid UTF-8 per Unicode 15 table 3-7 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
    i += len;
  }
  return true;
}

const json& field_value(const json& v, std::span<const abi_param> ps, std::size_t i) {
  return v.is_array() ? v[i] : *v.find(ps[i].name);
}

// Checks that `v` (array, or object keyed by name) supplies exactly the values of `ps`.
void check_fields(const json& v, std::span<const abi_param> ps, const where* w, bool top) {
  const std::string noun = top ? "argument" : "component";
  if (v.is_array()) {
    if (v.size() != ps.size()) {
      fail(w, "expected " + std::to_string(ps.size()) + " " + noun + "s, got " + std::to_string(v.size()));
    }
    return;
  }
  if (v.is_object()) {
    if (!all_named(ps)) fail(w, "an object needs every " + noun + " named uniquely; pass an array");
    for (const auto& p : ps)
      if (!v.contains(p.name)) fail(w, "missing " + noun + " \"" + p.name + "\"");
    if (v.size() != ps.size()) {
      for (const auto& item : v.items()) {
        if (std::none_of(ps.begin(), ps.end(), [&](const abi_param& p) { return p.name == item.key(); }))
          fail(w, "unknown " + noun + " \"" + item.key() + "\"");
      }
    }
    return;
  }
  if (top) fail(w, "arguments must be a JSON array or object");
  fail(w, "expected an array or object for a tuple, got " + shown(v));
}

void check_array(const json& v, const abi_type& t, const where* w) {
  if (!v.is_array()) fail(w, "expected an array, got " + shown(v));
  if (t.kind == abi_kind::fixed_array && v.size() != t.size) {
    fail(w, "expected " + std::to_string(t.size) + " elements, got " + std::to_string(v.size()));
  }
}

[[noreturn]] void too_deep(const where* w) { fail(w, "values nested too deeply"); }

// ---- encoder -----------------------------------------------------------------------------------------

class encoder {
 public:
  bytes out;

  std::size_t alloc(std::size_t n) {
    const std::size_t at = out.size();
    out.resize(at + n);
    return at;
  }

  // Heads of `ps` at out[base...] (already allocated), tails appended; offsets relative to base.
  void fields(std::span<const abi_param> ps, const json& v, std::size_t base, const where* parent,
              where::step how, std::size_t depth) {
    check_fields(v, ps, parent, how == where::step::arg);
    std::size_t head = base;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const abi_type& t = ps[i].type;
      const where w{parent, how, i, ps[i].name, &t};
      const json& x = field_value(v, ps, i);
      if (t.is_dynamic()) {
        put_offset(head, out.size() - base);
        dynamic_value(t, x, &w, depth + 1);
        head += word_size;
      } else {
        static_value(t, x, head, &w, depth + 1);
        head += t.head_size();
      }
    }
  }

  // Elements of an array at out[base...]: heads allocated here for dynamic elements; static elements
  // are appended one by one so a huge JSON array cannot make us allocate before it is checked.
  void elements(const abi_type& elem, const json& arr, std::size_t base, const where* parent,
                std::size_t depth) {
    if (elem.is_dynamic()) {
      alloc(arr.size() * word_size);
      for (std::size_t i = 0; i < arr.size(); ++i) {
        const where w{parent, where::step::element, i, {}, &elem};
        put_offset(base + i * word_size, out.size() - base);
        dynamic_value(elem, arr[i], &w, depth + 1);
      }
      return;
    }
    const std::size_t hs = elem.head_size();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const where w{parent, where::step::element, i, {}, &elem};
      static_value(elem, arr[i], alloc(hs), &w, depth + 1);
    }
  }

  void static_value(const abi_type& t, const json& v, std::size_t at, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    std::uint8_t* p = out.data() + at;
    switch (t.kind) {
      case abi_kind::uint:
      case abi_kind::sint: {
        // fast path: small non-negative integers
        if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
          const auto u = v.get<std::uint64_t>();
          const unsigned limit = t.bits - (t.kind == abi_kind::sint ? 1u : 0u);
          if (limit >= 64 || (u >> limit) == 0) {
            std::memset(p, 0, 24);
            store_be64(p + 24, u);
            return;
          }
        }
        put_int(p, v, t.bits, t.kind == abi_kind::sint, w);
        return;
      }
      case abi_kind::fixed:
      case abi_kind::ufixed: put_fixed(p, v, t, w); return;
      case abi_kind::address: put_address(p, v, w); return;
      case abi_kind::boolean:
        if (!v.is_boolean()) fail(w, "expected true or false, got " + shown(v));
        std::memset(p, 0, word_size);
        p[31] = v.get<bool>() ? 1 : 0;
        return;
      case abi_kind::fixed_bytes:
        std::memset(p, 0, word_size);
        put_fixed_bytes(p, v, t.size, w);
        return;
      case abi_kind::function:
        std::memset(p, 0, word_size);
        put_fixed_bytes(p, v, 24, w);
        return;
      case abi_kind::fixed_array: {
        check_array(v, t, w);
        const std::size_t hs = t.element->head_size();
        for (std::size_t i = 0; i < t.size; ++i) {
          const where we{w, where::step::element, i, {}, t.element.get()};
          static_value(*t.element, v[i], at + i * hs, &we, depth + 1);
        }
        return;
      }
      case abi_kind::tuple: fields(t.components, v, at, w, where::step::field, depth); return;
      case abi_kind::dynamic_bytes:
      case abi_kind::string:
      case abi_kind::array: break;
    }
    fail(w, "internal error: dynamic type in static position");
  }

  void dynamic_value(const abi_type& t, const json& v, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    switch (t.kind) {
      case abi_kind::dynamic_bytes:
      case abi_kind::string: {
        const std::size_t at = alloc(word_size);
        const std::size_t n = raw(t, v, w);
        put_u64(at, n);
        return;
      }
      case abi_kind::array: {
        check_array(v, t, w);
        const std::size_t at = alloc(word_size);
        put_u64(at, v.size());
        elements(*t.element, v, at + word_size, w, depth);
        return;
      }
      case abi_kind::fixed_array:
        check_array(v, t, w);
        elements(*t.element, v, out.size(), w, depth);
        return;
      case abi_kind::tuple: {
        check_fields(v, t.components, w, false);
        std::size_t heads = 0;
        for (const auto& c : t.components) heads += c.type.head_size();
        fields(t.components, v, alloc(heads), w, where::step::field, depth);
        return;
      }
      default: fail(w, "internal error: static type in dynamic position");
    }
  }

  // Appends the contents of a bytes/string value padded to 32 bytes; returns the unpadded length.
  std::size_t raw(const abi_type& t, const json& v, const where* w) {
    if (t.kind == abi_kind::string) {
      if (!v.is_string()) fail(w, "expected a string, got " + shown(v));
      const std::string& s = v.get_ref<const std::string&>();
      const std::size_t at = alloc(padded(s.size()));
      std::memcpy(out.data() + at, s.data(), s.size());
      return s.size();
    }
    const std::string_view digits = hex_digits_of(v, w);
    const std::size_t n = digits.size() / 2;
    const std::size_t at = alloc(padded(n));
    decode_hex_or_fail(digits, out.data() + at, w);
    return n;
  }

  // The spec's in-place encoding used to hash indexed arrays and tuples: values padded to 32 bytes,
  // no offsets and no lengths.
  void in_place(const abi_type& t, const json& v, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    switch (t.kind) {
      case abi_kind::dynamic_bytes:
      case abi_kind::string: raw(t, v, w); return;
      case abi_kind::array:
      case abi_kind::fixed_array:
        check_array(v, t, w);
        for (std::size_t i = 0; i < v.size(); ++i) {
          const where we{w, where::step::element, i, {}, t.element.get()};
          in_place(*t.element, v[i], &we, depth + 1);
        }
        return;
      case abi_kind::tuple:
        check_fields(v, t.components, w, false);
        for (std::size_t i = 0; i < t.components.size(); ++i) {
          const where wf{w, where::step::field, i, t.components[i].name, &t.components[i].type};
          in_place(t.components[i].type, field_value(v, t.components, i), &wf, depth + 1);
        }
        return;
      default: static_value(t, v, alloc(word_size), w, depth); return;
    }
  }

 private:
  void put_u64(std::size_t at, std::uint64_t v) {
    std::memset(out.data() + at, 0, 24);
    store_be64(out.data() + at + 24, v);
  }
  void put_offset(std::size_t at, std::size_t offset) { put_u64(at, offset); }
};

// ---- decoder -----------------------------------------------------------------------------------------

// Text of a length/offset word for messages: decimal when it fits 64 bits, else 0x-hex.
std::string word_text(const std::uint8_t* p, bool hex) {
  if (all_zero(p, 24)) {
    const std::uint64_t v = load_be64(p + 24);
    if (!hex) return std::to_string(v);
    std::string s = hex_string(p + 24, 8);
    const auto nz = s.find_first_not_of('0', 2);
    return nz == std::string::npos ? "0x0" : "0x" + s.substr(nz);
  }
  std::string s = hex_string(p, word_size);
  return "0x" + s.substr(s.find_first_not_of('0', 2));
}

class decoder {
 public:
  // A legitimate encoding reads each word once; aliasing offsets may re-read words up to 4 times over,
  // which bounds the output of "decoding bombs" to a small multiple of the input.
  explicit decoder(std::span<const std::uint8_t> data) : d_(data), budget_(data.size() / 8 + 64) {}

  json fields(std::span<const abi_param> ps, std::size_t base, const where* parent, where::step how,
              std::size_t depth, bool as_object) {
    json result = as_object ? json::object() : json::array();
    if (!as_object) result.get_ref<json::array_t&>().reserve(ps.size());
    std::size_t head = base;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const abi_type& t = ps[i].type;
      const where w{parent, how, i, ps[i].name, &t};
      json v;
      if (t.is_dynamic()) {
        v = dynamic_value(t, offset(head, base, &w), &w, depth + 1);
        head += word_size;
      } else {
        v = static_value(t, head, &w, depth + 1);
        head += t.head_size();
      }
      if (as_object) {
        result.get_ref<json::object_t&>().emplace(ps[i].name, std::move(v));
      } else {
        result.get_ref<json::array_t&>().push_back(std::move(v));
      }
    }
    return result;
  }

  json static_value(const abi_type& t, std::size_t at, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    switch (t.kind) {
      case abi_kind::fixed_array: return elements(*t.element, at, t.size, w, depth);
      case abi_kind::tuple:
        return fields(t.components, at, w, where::step::field, depth, all_named(t.components));
      default: break;
    }
    const std::uint8_t* p = word(at, w);
    switch (t.kind) {
      case abi_kind::uint:
      case abi_kind::sint:
        check_int(p, t.bits, t.kind == abi_kind::sint, w);
        return word_to_json(p, t.kind == abi_kind::sint);
      case abi_kind::fixed:
      case abi_kind::ufixed: {
        check_int(p, t.bits, t.kind == abi_kind::fixed, w);
        return json(fixed_text(word_to_decimal(p, t.kind == abi_kind::fixed), t.decimals));
      }
      case abi_kind::address:
        if (!all_zero(p, 12)) fail(w, "dirty padding: address word has non-zero high bytes");
        return json(checksum_address(std::span<const std::uint8_t, 20>(p + 12, 20)));
      case abi_kind::boolean:
        if (!all_zero(p, 31) || p[31] > 1) fail(w, "dirty padding: bool word is not 0 or 1");
        return json(p[31] == 1);
      case abi_kind::fixed_bytes:
        if (!all_zero(p + t.size, word_size - t.size)) {
          fail(w, "dirty padding: non-zero bytes after byte " + std::to_string(t.size));
        }
        return json(hex_string(p, t.size));
      case abi_kind::function:
        if (!all_zero(p + 24, 8)) fail(w, "dirty padding: non-zero bytes after byte 24");
        return json(hex_string(p, 24));
      default: fail(w, "internal error: dynamic type in static position");
    }
  }

  json dynamic_value(const abi_type& t, std::size_t at, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    switch (t.kind) {
      case abi_kind::dynamic_bytes:
      case abi_kind::string: {
        const std::uint8_t* p = word(at, w);
        const std::size_t room = d_.size() - at - word_size;
        if (!all_zero(p, 24) || load_be64(p + 24) > room) {
          fail(w, "length " + word_text(p, false) + " at byte " + std::to_string(at) + " exceeds the data (" +
                      std::to_string(d_.size()) + " bytes)");
        }
        const std::size_t n = load_be64(p + 24);
        const std::size_t n_padded = padded(n);
        if (n_padded > room) {
          fail(w, "data too short: " + std::to_string(n) + " bytes at byte " + std::to_string(at + word_size) +
                      " need " + std::to_string(n_padded - n) + " bytes of padding");
        }
        charge(n_padded / word_size, w);
        const std::uint8_t* body = p + word_size;
        if (!all_zero(body + n, n_padded - n)) {
          fail(w, std::string("dirty padding: non-zero bytes after the ") +
                      (t.kind == abi_kind::string ? "string" : "bytes") + " contents");
        }
        if (t.kind == abi_kind::dynamic_bytes) return json(hex_string(body, n));
        if (!valid_utf8(body, n)) fail(w, "string is not valid UTF-8");
        return json(std::string(reinterpret_cast<const char*>(body), n));
      }
      case abi_kind::array: {
        const std::uint8_t* p = word(at, w);
        const std::size_t room = d_.size() - at - word_size;
        const std::size_t unit = std::max(word_size, t.element->head_size());
        if (!all_zero(p, 24) || load_be64(p + 24) > room / unit) {
          fail(w, "array length " + word_text(p, false) + " at byte " + std::to_string(at) +
                      " exceeds the data (" + std::to_string(d_.size()) + " bytes)");
        }
        return elements(*t.element, at + word_size, load_be64(p + 24), w, depth);
      }
      case abi_kind::fixed_array: return elements(*t.element, at, t.size, w, depth);
      case abi_kind::tuple:
        return fields(t.components, at, w, where::step::field, depth, all_named(t.components));
      default: fail(w, "internal error: static type in dynamic position");
    }
  }

 private:
  json elements(const abi_type& elem, std::size_t base, std::size_t count, const where* parent,
                std::size_t depth) {
    json result = json::array();
    auto& arr = result.get_ref<json::array_t&>();
    arr.reserve(count);
    const bool dynamic = elem.is_dynamic();
    const std::size_t hs = elem.head_size();
    for (std::size_t i = 0; i < count; ++i) {
      const where w{parent, where::step::element, i, {}, &elem};
      if (dynamic) {
        arr.push_back(dynamic_value(elem, offset(base + i * word_size, base, &w), &w, depth + 1));
      } else {
        arr.push_back(static_value(elem, base + i * hs, &w, depth + 1));
      }
    }
    return result;
  }

  void charge(std::size_t words, const where* w) {
    if (words > budget_) fail(w, "data refers to the same values too many times");
    budget_ -= words;
  }

  const std::uint8_t* word(std::size_t at, const where* w) {
    if (at > d_.size() || d_.size() - at < word_size) {
      fail(w, "data too short: need 32 bytes at byte " + std::to_string(at) + ", have " +
                  std::to_string(d_.size()) + " bytes");
    }
    charge(1, w);
    return d_.data() + at;
  }

  // Reads the offset at `head` (relative to `base`) and returns the absolute position it points to.
  std::size_t offset(std::size_t head, std::size_t base, const where* w) {
    const std::uint8_t* p = word(head, w);
    if (!all_zero(p, 24) || load_be64(p + 24) > d_.size() - base) {
      fail(w, "offset " + word_text(p, true) + " at byte " + std::to_string(head) +
                  " points past the end of data (" + std::to_string(d_.size()) + " bytes)");
    }
    return base + load_be64(p + 24);
  }

  static void check_int(const std::uint8_t* p, unsigned bits, bool is_signed, const where* w) {
    const std::size_t pad = word_size - bits / 8;
    if (!is_signed) {
      if (!all_zero(p, pad)) fail(w, "dirty padding: bits above bit " + std::to_string(bits) + " are set");
      return;
    }
    const bool negative = (p[pad] & 0x80) != 0;
    if (!(negative ? all_ff(p, pad) : all_zero(p, pad))) {
      fail(w, "dirty padding: value is not sign-extended from " + std::to_string(bits) + " bits");
    }
  }

  // "-1250" with 3 decimals -> "-1.25"
  static std::string fixed_text(std::string digits, unsigned decimals) {
    const bool negative = digits[0] == '-';
    if (negative) digits.erase(0, 1);
    if (digits.size() <= decimals) digits.insert(0, decimals + 1 - digits.size(), '0');
    std::string whole = digits.substr(0, digits.size() - decimals);
    std::string frac = digits.substr(digits.size() - decimals);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    std::string s = negative ? "-" + whole : whole;
    if (!frac.empty()) s += "." + frac;
    return s;
  }

  std::span<const std::uint8_t> d_;
  std::size_t budget_;
};

}  // namespace

bool all_named(std::span<const abi_param> params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].name.empty()) return false;
    for (std::size_t j = 0; j < i; ++j)
      if (params[j].name == params[i].name) return false;
  }
  return true;
}

std::string checksum_address(std::span<const std::uint8_t, 20> address) {
  std::string s = to_hex(address, true);
  const hash256 h = keccak256(std::string_view(s).substr(2));
  for (std::size_t i = 0; i < 40; ++i) {
    const unsigned nibble = i % 2 == 0 ? h[i / 2] >> 4 : h[i / 2] & 0x0f;
    char& c = s[i + 2];
    if (c >= 'a' && nibble >= 8) c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

namespace {

bytes encode_with_prefix(std::span<const abi_param> params, const json& args,
                         std::span<const std::uint8_t> prefix) {
  check_fields(args, params, nullptr, true);
  encoder e;
  std::size_t heads = 0;
  for (const auto& p : params) heads += p.type.head_size();
  e.out.reserve(prefix.size() + heads + 64 * params.size());
  e.out.assign(prefix.begin(), prefix.end());
  e.fields(params, args, e.alloc(heads), nullptr, where::step::arg, 0);
  return std::move(e.out);
}

}  // namespace

bytes encode(std::span<const abi_param> params, const json& args) {
  return encode_with_prefix(params, args, {});
}

json decode(std::span<const abi_param> params, std::span<const std::uint8_t> data) {
  decoder d(data);
  return d.fields(params, 0, nullptr, where::step::value, 0, false);
}

json shape_result(std::span<const abi_param> params, json values) {
  if (params.size() == 1 && values.is_array() && values.size() == 1) return std::move(values[0]);
  if (params.size() > 1 && all_named(params) && values.is_array() && values.size() == params.size()) {
    json obj = json::object();
    for (std::size_t i = 0; i < params.size(); ++i) obj[params[i].name] = std::move(values[i]);
    return obj;
  }
  return values;
}

bytes encode_call(const abi_function& function, const json& args) {
  const auto sel = function.selector();
  return encode_with_prefix(function.inputs, args, sel);
}

json decode_call(const abi_function& function, std::span<const std::uint8_t> calldata) {
  const auto sel = function.selector();
  if (calldata.size() < 4) throw abi_error("calldata is shorter than a 4-byte selector");
  if (!std::equal(sel.begin(), sel.end(), calldata.begin())) {
    throw abi_error("selector " + to_hex(calldata.first(4)) + " does not match " + function.signature() +
                    " (" + to_hex(sel) + ")");
  }
  return decode(function.inputs, calldata.subspan(4));
}

bool is_hashed_topic(const abi_type& t) {
  switch (t.kind) {
    case abi_kind::dynamic_bytes:
    case abi_kind::string:
    case abi_kind::array:
    case abi_kind::fixed_array:
    case abi_kind::tuple: return true;
    default: return false;
  }
}

std::vector<std::optional<bytes>> encode_topics(const abi_event& event, const json& filter_args) {
  std::vector<std::optional<bytes>> topics;
  if (!event.anonymous) {
    const auto t0 = event.topic0();
    topics.emplace_back(bytes(t0.begin(), t0.end()));
  }
  const auto& inputs = event.inputs;
  std::vector<const json*> values(inputs.size(), nullptr);
  auto not_indexed = [&](std::size_t i) {
    const where w{nullptr, where::step::arg, i, inputs[i].name, &inputs[i].type};
    fail(&w, "not an indexed argument; only indexed arguments can be filtered");
  };
  if (filter_args.is_array()) {
    if (filter_args.size() > inputs.size()) {
      throw abi_error("too many filter values: " + event.name + " has " + std::to_string(inputs.size()) +
                      " arguments");
    }
    for (std::size_t i = 0; i < filter_args.size(); ++i) {
      if (filter_args[i].is_null()) continue;
      if (!inputs[i].indexed) not_indexed(i);
      values[i] = &filter_args[i];
    }
  } else if (filter_args.is_object()) {
    for (const auto& item : filter_args.items()) {
      const auto it = std::find_if(inputs.begin(), inputs.end(),
                                   [&](const abi_param& p) { return p.name == item.key(); });
      if (it == inputs.end()) throw abi_error("unknown argument \"" + item.key() + "\" of " + event.name);
      const auto i = static_cast<std::size_t>(it - inputs.begin());
      if (item.value().is_null()) continue;
      if (!it->indexed) not_indexed(i);
      values[i] = &item.value();
    }
  } else if (!filter_args.is_null()) {
    throw abi_error("filter arguments must be a JSON array, object or null");
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].indexed) continue;
    if (values[i] == nullptr) {
      topics.emplace_back(std::nullopt);
      continue;
    }
    const abi_type& t = inputs[i].type;
    const where w{nullptr, where::step::arg, i, inputs[i].name, &t};
    encoder e;
    if (is_hashed_topic(t)) {
      std::size_t n = 0;
      if (t.kind == abi_kind::dynamic_bytes || t.kind == abi_kind::string) {
        n = e.raw(t, *values[i], &w);  // hash of the unpadded contents
      } else {
        e.in_place(t, *values[i], &w, 0);
        n = e.out.size();
      }
      const hash256 h = keccak256(std::span<const std::uint8_t>(e.out.data(), n));
      topics.emplace_back(bytes(h.begin(), h.end()));
    } else {
      e.static_value(t, *values[i], e.alloc(word_size), &w, 0);
      topics.emplace_back(std::move(e.out));
    }
  }
  while (!topics.empty() && !topics.back() && topics.size() > (event.anonymous ? 0u : 1u)) topics.pop_back();
  return topics;
}

}  // namespace pipekit::eth
