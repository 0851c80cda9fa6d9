#include "pipekit/util/parse.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url_view.hpp>
#include <fmt/format.h>

namespace pipekit::util {

std::chrono::nanoseconds parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::nanoseconds{0};
  if (text.empty()) throw std::invalid_argument("empty duration");
  const std::string_view whole = text;
  long double total = 0;
  while (!text.empty()) {
    std::size_t i = 0;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == 0)
      throw std::invalid_argument(fmt::format("invalid duration \"{}\": expected a number", whole));
    long double value = 0;
    std::string number(text.substr(0, i));
    try {
      std::size_t used = 0;
      value = std::stold(number, &used);
      if (used != number.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw std::invalid_argument(fmt::format("invalid duration \"{}\": bad number \"{}\"", whole, number));
    }
    text.remove_prefix(i);
    std::size_t j = 0;
    while (j < text.size() && !((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    std::string_view unit = text.substr(0, j);
    text.remove_prefix(j);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") scale = 1e3L;
    else if (unit == "ms") scale = 1e6L;
    else if (unit == "s") scale = 1e9L;
    else if (unit == "m") scale = 60e9L;
    else if (unit == "h") scale = 3600e9L;
    else if (unit.empty())
      throw std::invalid_argument(fmt::format("invalid duration \"{}\": missing unit (ns, us, ms, s, m, h)", whole));
    else
      throw std::invalid_argument(fmt::format("invalid duration \"{}\": unknown unit \"{}\"", whole, unit));
    total += value * scale;
  }
  if (total > 9.2e18L) throw std::invalid_argument(fmt::format("invalid duration \"{}\": too large", whole));
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(total))};
}

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

namespace {
std::uint16_t parse_port(std::string_view p, std::string_view whole) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value == 0 || value > 65535)
    throw std::invalid_argument(fmt::format("invalid port \"{}\" in \"{}\"", p, whole));
  return static_cast<std::uint16_t>(value);
}
}  // namespace

host_port parse_host_port(std::string_view text, std::optional<std::uint16_t> default_port,
                          std::string_view default_host) {
  host_port out;
  std::string_view rest = text;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument(fmt::format("invalid address \"{}\": missing ']'", text));
    out.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !rest.starts_with(':'))
      throw std::invalid_argument(fmt::format("invalid address \"{}\": expected ':' after ']'", text));
  } else {
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon)
      throw std::invalid_argument(fmt::format("invalid address \"{}\": put IPv6 addresses in brackets", text));
    out.host = std::string(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon);
  }
  if (out.host.empty()) out.host = std::string(default_host);
  if (rest.empty() || rest == ":") {
    if (!default_port) throw std::invalid_argument(fmt::format("invalid address \"{}\": missing port", text));
    out.port = *default_port;
  } else {
    out.port = parse_port(rest.substr(1), text);
  }
  return out;
}

std::string url_escape(std::string_view text) { return boost::urls::encode(text, boost::urls::unreserved_chars); }

std::string url::target() const { return query.empty() ? path : path + "?" + query; }

url parse_url(std::string_view text) {
  auto r = boost::urls::parse_absolute_uri(text);
  if (!r) throw std::invalid_argument(fmt::format("invalid URL \"{}\": {}", text, r.error().message()));
  const boost::urls::url_view& v = *r;
  url out;
  out.scheme = v.scheme();
  for (char& c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.user = v.user();
  out.password = v.password();
  out.host = v.host_type() == boost::urls::host_type::ipv6 ? std::string(v.host_address()) : std::string(v.host());
  if (v.has_port()) {
    out.port = parse_port(v.port(), text);
  } else if (out.scheme == "http" || out.scheme == "ws") {
    out.port = 80;
  } else if (out.scheme == "https" || out.scheme == "wss") {
    out.port = 443;
  } else if (out.scheme == "redis" || out.scheme == "rediss") {
    out.port = 6379;
  }
  out.path = v.encoded_path().empty() ? "/" : std::string(v.encoded_path());
  out.query = v.encoded_query();
  return out;
}

}  // namespace pipekit::util
