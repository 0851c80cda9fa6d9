// pipekit::push::parse_client_message: what ws-push makes of each text message a client sends.
#include <string>
#include <variant>

#include <catch2/catch.hpp>

#include "pipekit/push/client_message.hpp"

namespace push = pipekit::push;

namespace {

push::invalid_message::reason reason_of(std::string_view text) {
  auto m = push::parse_client_message(text);
  REQUIRE(std::holds_alternative<push::invalid_message>(m));
  return std::get<push::invalid_message>(m).error;
}

}  // namespace

TEST_CASE("client message: login with its token and since; other members ignored", "[push]") {
  auto m = push::parse_client_message(R"({"type":"login","token":"t.o.k","since":"17-0","extra":[1]})");
  REQUIRE(std::holds_alternative<push::login_message>(m));
  const auto& l = std::get<push::login_message>(m);
  CHECK(l.token == "t.o.k");
  CHECK(l.since == "17-0");
  auto bare = std::get<push::login_message>(push::parse_client_message(R"({"token":"x","type":"login"})"));
  CHECK(bare.token == "x");
  CHECK_FALSE(bare.since);
}

TEST_CASE("client message: a login without a string token has none (refused as malformed)", "[push]") {
  for (const char* text : {R"({"type":"login"})", R"({"type":"login","token":42})", R"({"type":"login","token":null})"}) {
    auto m = push::parse_client_message(text);
    REQUIRE(std::holds_alternative<push::login_message>(m));
    CHECK_FALSE(std::get<push::login_message>(m).token);
  }
  CHECK(std::get<push::login_message>(push::parse_client_message(R"({"type":"login","token":""})")).token == "");
}

TEST_CASE("client message: ping; invalid JSON and unknown types named apart", "[push]") {
  CHECK(std::holds_alternative<push::ping_message>(push::parse_client_message(R"({"type":"ping","n":1})")));
  using r = push::invalid_message::reason;
  CHECK(reason_of("garbage") == r::invalid_json);
  CHECK(reason_of("") == r::invalid_json);
  CHECK(reason_of(R"({"type":"login")") == r::invalid_json);
  CHECK(reason_of("{\"type\":\"ping\",\"x\":\"\xff\"}") == r::invalid_json);  // not UTF-8
  CHECK(reason_of(R"({"type":"what"})") == r::unknown_type);
  CHECK(reason_of(R"({"type":["login"]})") == r::unknown_type);
  CHECK(reason_of(R"({"type":"PING"})") == r::unknown_type);
  CHECK(reason_of(R"(["login"])") == r::unknown_type);
  CHECK(reason_of(R"("ping")") == r::unknown_type);
  CHECK(reason_of("{}") == r::unknown_type);
  CHECK(push::error_reply(r::invalid_json) == R"({"type":"error","error":"invalid_json"})");
  CHECK(push::error_reply(r::unknown_type) == R"({"type":"error","error":"unknown_type"})");
}
