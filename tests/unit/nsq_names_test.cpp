#include <catch2/catch.hpp>

#include <string>

#include "pipekit/nsq/names.hpp"

using namespace pipekit::nsq;

TEST_CASE("topic and channel names follow nsqd's rule", "[nsq]") {
  for (const char* good : {"a", "events", "a.b_c-D9", "x#ephemeral", "..", "-_-", "UPPER.lower"}) {
    INFO(good);
    CHECK(is_valid_topic_name(good));
    CHECK(is_valid_channel_name(good));
  }
  for (const char* bad : {"", "#ephemeral", "a b", "a#b", "a#ephemeral#ephemeral", "caf\xc3\xa9", "a/b", "a:b",
                          "x#Ephemeral", "a\n", "a*"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_topic_name(bad));
    CHECK_FALSE(is_valid_channel_name(bad));
  }
}

TEST_CASE("names are 1 to 64 bytes, the #ephemeral suffix included", "[nsq]") {
  CHECK(is_valid_topic_name(std::string(64, 'a')));
  CHECK_FALSE(is_valid_topic_name(std::string(65, 'a')));
  CHECK(is_valid_channel_name(std::string(54, 'c') + "#ephemeral"));
  CHECK_FALSE(is_valid_channel_name(std::string(55, 'c') + "#ephemeral"));
}

TEST_CASE("is_ephemeral looks at the suffix only", "[nsq]") {
  CHECK(is_ephemeral("t#ephemeral"));
  CHECK(is_ephemeral("#ephemeral"));
  CHECK_FALSE(is_ephemeral("t"));
  CHECK_FALSE(is_ephemeral("t#ephemeralx"));
}
