// pipekit::push::delivered_to_all: push-route's reading of a node's answer without a JSON parse,
// against what ws-push writes and against nlohmann's reading of the same text.
#include <optional>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/push/node_answer.hpp"

namespace push = pipekit::push;

TEST_CASE("node answer: delivered to every user, as ws-push writes it", "[push]") {
  CHECK(push::delivered_to_all(R"({"line":1,"delivered":1})") == std::optional<std::size_t>(1));
  CHECK(push::delivered_to_all(R"({"line":500,"delivered":0})") == std::optional<std::size_t>(0));
  CHECK(push::delivered_to_all(R"({"line":7,"delivered":123456789012345678})") ==
        std::optional<std::size_t>(123456789012345678u));
  // What ws-push writes for such a message (ordered_json, compact) is what is read.
  const auto written = nlohmann::ordered_json{{"line", 3}, {"delivered", 2}}.dump();
  CHECK(push::delivered_to_all(written) == std::optional<std::size_t>(2));
}

TEST_CASE("node answer: anything else is left to the JSON reading", "[push]") {
  for (const char* text : {
           R"({"line":1,"delivered":1,"offline":["u1"]})",  // some user offline
           R"({"line":1,"delivered":1,"dropped":1})",
           R"({"line":1,"id":"x","delivered":1})",
           R"({"line":1,"error":"invalid_message","message":"m"})",
           R"({"line":1, "delivered":1})",  // written by another hand: spaces
           R"({"delivered":1,"line":1})",   // another order
           R"({"line":01,"delivered":1})",  // not JSON
           R"({"line":1,"delivered":01})",
           R"({"line":1,"delivered":-1})",
           R"({"line":1,"delivered":1.0})",
           R"({"line":1,"delivered":1e2})",
           R"({"line":1,"delivered":})",
           R"({"line":,"delivered":1})",
           R"({"line":1,"delivered":1}})",
           R"({"line":1,"delivered":1)",
           R"({"line":1,"delivered":1} )",
           R"({"line":1,"delivered":1234567890123456789})",  // more digits than read here
           "",
           "{",
       })
    CHECK_FALSE(push::delivered_to_all(text));
}
