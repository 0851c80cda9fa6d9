#include <catch2/catch.hpp>

#include <string>

#include "pipekit/json/parse.hpp"

using pipekit::json::parse;

TEST_CASE("json::parse keeps integers beyond 64 bits exact", "[json]") {
  auto r = parse(R"([18446744073709551615, 18446744073709551616, -9223372036854775809, 1.5, 2e3, -7])");
  REQUIRE(r.ok());
  CHECK(r.value[0].is_number_unsigned());
  CHECK(r.value[1] == "18446744073709551616");
  CHECK(r.value[2] == "-9223372036854775809");
  CHECK(r.value[3].is_number_float());
  CHECK(r.value[4].is_number_float());
  CHECK(r.value[5] == -7);
}

TEST_CASE("json::parse reports where the text stops being JSON", "[json]") {
  auto r = parse("{\"a\": tru}");
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.error, Catch::StartsWith("invalid JSON at column"));
  CHECK(r.value.is_null());
  CHECK_FALSE(parse("").ok());
  CHECK_FALSE(parse("[1] x").ok());
}

TEST_CASE("json::parse refuses nesting deeper than max_depth", "[json]") {
  const auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  CHECK(parse(nested(pipekit::json::max_depth)).ok());
  auto deep = parse(nested(pipekit::json::max_depth + 1));
  CHECK_FALSE(deep.ok());
  CHECK_THAT(deep.error, Catch::Contains("nested deeper than 128"));
  CHECK_FALSE(parse(nested(200000)).ok());  // no stack overflow
}
