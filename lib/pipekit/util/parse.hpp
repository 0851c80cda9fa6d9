#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Parsers for the values flags take. Each throws std::invalid_argument with a message that
// says what was wrong; the caller adds where (which flag or field) it came from.
namespace pipekit::util {

// Go/NSQ-style durations: "250ms", "1.5s", "1h30m", "2us", "90ns", "0". Units: ns us µs ms s m h.
std::chrono::nanoseconds parse_duration(std::string_view text);

struct host_port {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
  std::string to_string() const;  // brackets IPv6 hosts again
};

// "127.0.0.1:4150", "[::1]:4150", "localhost:4150", ":4150" (host = default_host).
// A missing port uses default_port when given, else it is an error.
host_port parse_host_port(std::string_view text, std::optional<std::uint16_t> default_port = {},
                          std::string_view default_host = "127.0.0.1");

struct url {
  std::string scheme;  // lower case: "http", "https", "ws", "wss", "redis", ...
  std::string user;
  std::string password;
  std::string host;    // without brackets
  std::uint16_t port = 0;  // the scheme's default when absent (http 80, https 443, ws 80, wss 443, redis 6379)
  std::string path;    // "/" when absent
  std::string query;   // without '?'
  std::string target() const;  // path + "?" + query, as an HTTP request target
};

// Absolute URLs, parsed with Boost.URL.
url parse_url(std::string_view text);

// Percent-encodes every byte outside RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~), as %XX in
// upper case: safe as a path segment or a query parameter's name or value ("a#b c" -> "a%23b%20c").
// The one escaper for the URLs pipekit builds (nsq-pub's /pub, lookupd's /lookup, AUTH queries).
std::string url_escape(std::string_view text);

}  // namespace pipekit::util
