#include "pipekit/json/parse.hpp"

#include <fmt/format.h>

namespace pipekit::json {
namespace {

using nlohmann::json;

// Builds the DOM with nlohmann's own SAX DOM builder, adding the depth limit and exact big
// integers. nlohmann::json::sax_parse takes any type with these members.
class sax {
 public:
  explicit sax(json& out) : dom_(out, false) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    if (text.find_first_of(".eE") == std::string::npos) {
      json::string_t exact = text;  // an integer beyond 64 bits: keep every digit
      return dom_.string(exact);
    }
    return dom_.number_float(v, text);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return enter() && dom_.start_object(n); }
  bool key(json::string_t& k) { return dom_.key(k); }
  bool end_object() { --depth_; return dom_.end_object(); }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() { --depth_; return dom_.end_array(); }

  template <class Exception>
  bool parse_error(std::size_t position, const std::string&, const Exception& ex) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while
    // parsing value - invalid literal; last read: 'no'" -> "invalid literal; last read: 'no'"
    std::string what = ex.what();
    auto dash = what.find(" - ");
    error = fmt::format("invalid JSON at column {}: {}", position, dash == std::string::npos ? what : what.substr(dash + 3));
    return false;
  }

  std::string error;

 private:
  bool enter() {
    if (++depth_ <= max_depth) return true;
    error = fmt::format("JSON nested deeper than {} levels", max_depth);
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t depth_ = 0;
};

}  // namespace

parse_result parse(std::string_view text) {
  parse_result r;
  sax handler(r.value);
  bool ok = json::sax_parse(text.begin(), text.end(), &handler, nlohmann::detail::input_format_t::json, true);
  if (!ok) {
    r.error = handler.error.empty() ? "invalid JSON" : std::move(handler.error);
    r.value = nullptr;  // a partial DOM is not a value
  }
  return r;
}

}  // namespace pipekit::json
