// ABI head/tail encoding of JSON values, call data and event topics.

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace pipekit::eth {
namespace {

using json = nlohmann::json;

constexpr std::size_t max_decimal_digits = 78;  // 2^256 has 78 decimal digits

// Strips "0x"/"0X"; returns false when absent.
bool strip_0x(std::string_view& s) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    return true;
  }
  return false;
}

[[noreturn]] void too_deep(const where* w) { fail(w, "values nested too deeply"); }

// ---- integers ---------------------------------------------------------------------------------------

// Writes the two's complement 256-bit word of (negative ? -magnitude : magnitude) after checking it fits
// the type. `magnitude` is a big-endian 32-byte word; `shown_value` shows the value in the error.
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
  if (!ok) {
    fail(w, (shown_value.is_string() ? clip_text(shown_value.get_ref<const std::string&>()) : preview(shown_value)) +
                " is out of range");
  }
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
  if (digits.size() > max_decimal_digits) return false;
  std::memset(mag, 0, word_size);
  if (digits.size() <= 19) {
    std::uint64_t v = 0;
    for (char c : digits) v = v * 10 + static_cast<std::uint64_t>(c - '0');
    store_be64(mag + 24, v);
    return true;
  }
  // mag = mag * 10 + digit, byte by byte; a carry out of the top byte means the value exceeds 2^256 - 1
  for (char c : digits) {
    unsigned carry = static_cast<unsigned>(c - '0');
    for (std::size_t i = word_size; i-- > 0;) {
      const unsigned v = mag[i] * 10u + carry;
      mag[i] = static_cast<std::uint8_t>(v);
      carry = v >> 8;
    }
    if (carry != 0) return false;
  }
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
        fail(w, preview(v) + " is not an integer (expected decimal or 0x-hex digits)");
      }
      if (!(hex ? parse_hex_magnitude(body, mag) : parse_decimal(body, mag))) {
        fail(w, clip_text(v.get_ref<const std::string&>()) + " is out of range");
      }
      break;
    }
    case json::value_t::number_float:
      fail(w, preview(v) + " is not an integer; pass big integers as decimal strings");
    default: fail(w, "expected an integer, got " + preview(v));
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
    if (!ok) fail(w, preview(v) + " is not a decimal number");
    if (frac.size() > t.decimals) {
      fail(w, preview(v) + " has more than " + std::to_string(t.decimals) + " decimals");
    }
    digits = std::string(whole) + std::string(frac);
    digits.append(t.decimals - frac.size(), '0');
  } else if (v.is_number_float()) {
    fail(w, preview(v) + ": pass fixed-point values as decimal strings");
  } else {
    fail(w, "expected a decimal string, got " + preview(v));
  }
  std::uint8_t mag[word_size];
  if (!parse_decimal(digits, mag)) fail(w, preview(v) + " is out of range");
  put_checked_int(out, mag, negative, t.bits, t.kind == abi_kind::fixed, w, v);
}

// ---- hex, addresses, strings ----------------------------------------------------------------------------

// Digits of a 0x-hex JSON string (prefix optional), checked for hex characters, then for even length.
std::string_view hex_digits_of(const json& v, const where* w) {
  if (!v.is_string()) fail(w, "expected a 0x-hex string, got " + preview(v));
  std::string_view s = v.get_ref<const std::string&>();
  strip_0x(s);
  const std::size_t bad = find_non_hex(s);
  if (bad != std::string_view::npos) fail(w, "invalid hex digit " + quote_char(s[bad]));
  if (s.size() % 2 != 0) fail(w, "odd number of hex digits");
  return s;
}

void put_fixed_bytes(std::uint8_t* out, const json& v, std::size_t n, const where* w) {
  const std::string_view digits = hex_digits_of(v, w);
  if (digits.size() != 2 * n) {
    fail(w, "expected " + std::to_string(n) + " bytes, got " + std::to_string(digits.size() / 2));
  }
  decode_hex_digits(digits, out);
}

void put_address(std::uint8_t* out, const json& v, const where* w) {
  if (!v.is_string()) fail(w, "expected an address string, got " + preview(v));
  const std::string& s = v.get_ref<const std::string&>();
  std::string_view h = s;
  if (!strip_0x(h) || h.size() != 40) fail(w, preview(v) + " is not an address (0x and 40 hex digits)");
  const std::size_t bad = find_non_hex(h);
  if (bad != std::string_view::npos) fail(w, "invalid hex digit " + quote_char(h[bad]));
  std::memset(out, 0, 12);
  decode_hex_digits(h, out + 12);
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

// ---- tuples and arrays --------------------------------------------------------------------------------

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
      if (!v.contains(p.name)) fail(w, "missing " + noun + " " + quote_text(p.name));
    if (v.size() != ps.size()) {
      for (const auto& item : v.items()) {
        if (std::none_of(ps.begin(), ps.end(), [&](const abi_param& p) { return p.name == item.key(); }))
          fail(w, "unknown " + noun + " " + quote_text(item.key()));
      }
    }
    return;
  }
  if (top) fail(w, "arguments must be a JSON array or object");
  fail(w, "expected an array or object for a tuple, got " + preview(v));
}

void check_array(const json& v, const abi_type& t, const where* w) {
  if (!v.is_array()) fail(w, "expected an array, got " + preview(v));
  if (t.kind == abi_kind::fixed_array && v.size() != t.size) {
    fail(w, "expected " + std::to_string(t.size) + " elements, got " + std::to_string(v.size()));
  }
}

std::size_t heads_size(std::span<const abi_param> ps) {
  std::size_t heads = 0;
  for (const auto& p : ps) heads += p.type.head_size();
  return heads;
}

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
  // REQUIRES: check_fields(v, ps, ...) passed (callers check before allocating the heads).
  void fields(std::span<const abi_param> ps, const json& v, std::size_t base, const where* parent,
              where::step how, std::size_t depth) {
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
        if (!v.is_boolean()) fail(w, "expected true or false, got " + preview(v));
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
      case abi_kind::tuple:
        check_fields(v, t.components, w, false);
        fields(t.components, v, at, w, where::step::field, depth);
        return;
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
      case abi_kind::tuple:
        check_fields(v, t.components, w, false);
        fields(t.components, v, alloc(heads_size(t.components)), w, where::step::field, depth);
        return;
      default: fail(w, "internal error: static type in dynamic position");
    }
  }

  // Appends the contents of a bytes/string value padded to 32 bytes; returns the unpadded length.
  std::size_t raw(const abi_type& t, const json& v, const where* w) {
    if (t.kind == abi_kind::string) {
      if (!v.is_string()) fail(w, "expected a string, got " + preview(v));
      const std::string& s = v.get_ref<const std::string&>();
      // as decode() does: a string that is not UTF-8 would not decode again
      if (!valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())) {
        fail(w, "string is not valid UTF-8");
      }
      const std::size_t at = alloc(padded(s.size()));
      std::memcpy(out.data() + at, s.data(), s.size());
      return s.size();
    }
    const std::string_view digits = hex_digits_of(v, w);
    const std::size_t n = digits.size() / 2;
    const std::size_t at = alloc(padded(n));
    decode_hex_digits(digits, out.data() + at);
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

bytes encode_with_prefix(std::span<const abi_param> params, const json& args,
                         std::span<const std::uint8_t> prefix) {
  check_fields(args, params, nullptr, true);
  encoder e;
  const std::size_t heads = heads_size(params);
  e.out.reserve(prefix.size() + heads + 64 * params.size());
  e.out.assign(prefix.begin(), prefix.end());
  e.fields(params, args, e.alloc(heads), nullptr, where::step::arg, 0);
  return std::move(e.out);
}

}  // namespace

bytes encode(std::span<const abi_param> params, const json& args) {
  return encode_with_prefix(params, args, {});
}

bytes encode_call(const abi_function& function, const json& args) {
  return encode_call(function.selector(), function.inputs, args);
}

bytes encode_call(const std::array<std::uint8_t, 4>& selector, std::span<const abi_param> inputs, const json& args) {
  return encode_with_prefix(inputs, args, selector);
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
      if (it == inputs.end()) throw abi_error("unknown argument " + quote_text(item.key()) + " of " + event.name);
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
