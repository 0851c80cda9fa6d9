// Strict ABI decoding of bytes to JSON values, call data, and the shaping of results.

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <boost/multiprecision/cpp_int.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace pipekit::eth {
namespace {

namespace mp = boost::multiprecision;
using json = nlohmann::json;

constexpr std::uint64_t max_safe_integer = 9007199254740992ULL;  // 2^53: larger integers become strings

bool all_ff(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != 0xff) return false;
  return true;
}

[[noreturn]] void too_deep(const where* w) { fail(w, "values nested too deeply"); }

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

  // The values of `ps` (heads at `base`, offsets relative to it) as a JSON array.
  json fields(std::span<const abi_param> ps, std::size_t base, const where* parent, where::step how,
              std::size_t depth) {
    json result = json::array();
    auto& arr = result.get_ref<json::array_t&>();
    arr.reserve(ps.size());
    std::size_t head = base;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const abi_type& t = ps[i].type;
      const where w{parent, how, i, ps[i].name, &t};
      if (t.is_dynamic()) {
        arr.push_back(dynamic_value(t, offset(head, base, &w), &w, depth + 1));
        head += word_size;
      } else {
        arr.push_back(static_value(t, head, &w, depth + 1));
        head += t.head_size();
      }
    }
    return result;
  }

  json static_value(const abi_type& t, std::size_t at, const where* w, std::size_t depth) {
    if (depth > max_type_depth) too_deep(w);
    switch (t.kind) {
      case abi_kind::fixed_array: return elements(*t.element, at, t.size, w, depth);
      case abi_kind::tuple:
        return named_or_array(t.components, fields(t.components, at, w, where::step::field, depth));
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
        return named_or_array(t.components, fields(t.components, at, w, where::step::field, depth));
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

json decode(std::span<const abi_param> params, std::span<const std::uint8_t> data) {
  decoder d(data);
  return d.fields(params, 0, nullptr, where::step::value, 0);
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

json named_or_array(std::span<const abi_param> params, json values) {
  if (!values.is_array() || values.size() != params.size() || !all_named(params)) return values;
  json obj = json::object();
  auto& members = obj.get_ref<json::object_t&>();
  for (std::size_t i = 0; i < params.size(); ++i) members.emplace(params[i].name, std::move(values[i]));
  return obj;
}

json shape_result(std::span<const abi_param> params, json values) {
  if (params.size() == 1 && values.is_array() && values.size() == 1) return std::move(values[0]);
  if (params.empty()) return values;  // [] (named_or_array would give {})
  return named_or_array(params, std::move(values));
}

}  // namespace pipekit::eth
