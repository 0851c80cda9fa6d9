#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "pipekit/log/escape.hpp"
#include "pipekit/util/base64.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/utf8.hpp"

using namespace std::chrono_literals;
using pipekit::util::parse_duration;
using pipekit::util::parse_host_port;
using pipekit::util::parse_url;
using pipekit::util::url_escape;

TEST_CASE("durations as Go and NSQ write them", "[util]") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("2us") == 2us);
  CHECK(parse_duration("90ns") == 90ns);
  CHECK(parse_duration("0") == 0ns);
  CHECK_THROWS_WITH(parse_duration("10"), Catch::Contains("missing unit"));
  CHECK_THROWS_WITH(parse_duration("5d"), Catch::Contains("unknown unit \"d\""));
  CHECK_THROWS_AS(parse_duration(""), std::invalid_argument);
  CHECK_THROWS_AS(parse_duration("ms"), std::invalid_argument);
  CHECK_THROWS_AS(parse_duration("1..2s"), std::invalid_argument);
}

TEST_CASE("host:port", "[util]") {
  auto a = parse_host_port("127.0.0.1:4150");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 4150);
  auto b = parse_host_port("[::1]:4161");
  CHECK(b.host == "::1");
  CHECK(b.port == 4161);
  CHECK(b.to_string() == "[::1]:4161");
  CHECK(parse_host_port(":4150").host == "127.0.0.1");
  CHECK(parse_host_port("localhost", 4150).port == 4150);
  CHECK_THROWS_WITH(parse_host_port("localhost"), Catch::Contains("missing port"));
  CHECK_THROWS_WITH(parse_host_port("h:70000"), Catch::Contains("invalid port"));
  CHECK_THROWS_WITH(parse_host_port("::1:80"), Catch::Contains("brackets"));
  CHECK_THROWS_AS(parse_host_port("h:0"), std::invalid_argument);
}

TEST_CASE("URLs", "[util]") {
  auto u = parse_url("http://127.0.0.1:8545");
  CHECK(u.scheme == "http");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 8545);
  CHECK(u.target() == "/");
  auto w = parse_url("WSS://node.example/v3/key?x=1");
  CHECK(w.scheme == "wss");
  CHECK(w.port == 443);
  CHECK(w.target() == "/v3/key?x=1");
  auto r = parse_url("redis://:secret@[::1]/0");
  CHECK(r.host == "::1");
  CHECK(r.port == 6379);
  CHECK(r.password == "secret");
  CHECK_THROWS_AS(parse_url("not a url"), std::invalid_argument);
  CHECK_THROWS_AS(parse_url("http://h:99999/"), std::invalid_argument);
}

TEST_CASE("URL escaping keeps RFC 3986's unreserved set and nothing else", "[util]") {
  std::string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  CHECK(url_escape(unreserved) == unreserved);
  CHECK(url_escape("") == "");
  CHECK(url_escape("events#ephemeral") == "events%23ephemeral");
  CHECK(url_escape("a b+c&d=e?f/g%h") == "a%20b%2Bc%26d%3De%3Ff%2Fg%25h");
  CHECK(url_escape(std::string("\0\x7f\xff", 3)) == "%00%7F%FF");
  CHECK(url_escape("\xc3\xa9") == "%C3%A9");  // UTF-8 bytes one by one
  // Every other byte becomes %XX (upper-case hex).
  for (int c = 0; c < 256; ++c) {
    std::string one(1, static_cast<char>(c));
    if (unreserved.find(static_cast<char>(c)) != std::string::npos) continue;
    CHECK(url_escape(one) == fmt::format("%{:02X}", c));
  }
}

TEST_CASE("UTF-8: RFC 3629's forms and nothing else", "[util]") {
  using pipekit::util::utf8_char_length;
  using pipekit::util::valid_utf8;
  CHECK(utf8_char_length("") == 0);
  CHECK(utf8_char_length("a") == 1);
  CHECK(utf8_char_length("\xc3\xa9x") == 2);
  CHECK(utf8_char_length("\xe2\x82\xac") == 3);
  CHECK(utf8_char_length("\xf0\x9f\x98\x80") == 4);
  CHECK(utf8_char_length("\xf4\x8f\xbf\xbf") == 4);  // U+10FFFF
  CHECK(utf8_char_length("\xf4\x90\x80\x80") == 0);  // past U+10FFFF
  CHECK(utf8_char_length("\xed\x9f\xbf") == 3);      // U+D7FF
  CHECK(utf8_char_length("\xed\xa0\x80") == 0);      // a surrogate
  CHECK(utf8_char_length("\xc0\xaf") == 0);           // overlong
  CHECK(utf8_char_length("\xe0\x80\xaf") == 0);      // overlong
  CHECK(utf8_char_length("\xf0\x80\x80\xaf") == 0);  // overlong
  CHECK(utf8_char_length("\x80") == 0);               // a stray continuation byte
  CHECK(utf8_char_length("\xe2\x82") == 0);           // cut short
  CHECK(utf8_char_length("\xe2\x28\xa1") == 0);       // not a continuation byte
  CHECK(utf8_char_length("\xf8\x88\x80\x80\x80") == 0);
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ASCII, longer than eight bytes"));
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and ASCII after it"));
  CHECK_FALSE(valid_utf8("eight ok\xff"));           // after a fast-path word
  CHECK_FALSE(valid_utf8("long ASCII run, then cut \xe2\x82"));
  CHECK_FALSE(valid_utf8(std::string_view("\xed\xa0\x80", 3)));
  CHECK(valid_utf8(std::string("nul\0inside", 11)));  // U+0000 is valid UTF-8
}

TEST_CASE("base64: RFC 4648's test vectors both ways", "[util]") {
  using pipekit::util::append_base64;
  using pipekit::util::base64_decode;
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, coded] : vectors) {
    std::string out = "x";
    append_base64(out, plain);
    CHECK(out == std::string("x") + coded);
    CHECK(base64_decode(coded) == std::string(plain));
  }
  CHECK(base64_decode("-_8") == std::string("\xfb\xff"));  // the URL-safe alphabet, no padding
  CHECK_FALSE(base64_decode("Zm9v!").has_value());
  CHECK_FALSE(base64_decode("Z").has_value());
}

TEST_CASE("log::escape: control characters and invalid UTF-8 never reach a log line raw", "[log]") {
  using pipekit::log::escape;
  CHECK(escape("topic.name_1-x") == "topic.name_1-x");
  CHECK(escape("a\x1b[31mred\rfake line\n") == "a\\x1b[31mred\\rfake line\\n");
  CHECK(escape(std::string("nul\0tab\t del\x7f", 13)) == "nul\\x00tab\\t del\\x7f");
  CHECK(escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // valid UTF-8 stays
  CHECK(escape("\xc2\x9b") == "\\xc2\\x9b");          // C1 control (CSI) as UTF-8
  CHECK(escape("\xff\xc3(\xed\xa0\x80") == "\\xff\\xc3(\\xed\\xa0\\x80");  // invalid, truncated, surrogate
  CHECK(escape("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");  // overlong
  CHECK(escape("back\\slash") == "back\\slash");
}
