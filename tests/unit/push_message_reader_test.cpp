// pipekit::push::read_plain_message: push-route's reading of an input line without a JSON tree,
// against what the tree gives for the same line (the oracle below is push-route's reading of a
// line as a tree, without pointers).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/push/message_reader.hpp"

namespace push = pipekit::push;
using ojson = nlohmann::ordered_json;

namespace {

std::string user_text(const ojson& u) {
  if (u.is_string()) return u.get<std::string>();
  if (u.is_number_integer() || u.is_number_unsigned()) return u.dump();
  return {};
}

// What push-route takes from the line as a tree, or nullopt when it rejects the line.
std::optional<push::plain_message> from_tree(const std::string& line) {
  const auto v = ojson::parse(line, nullptr, false);
  if (v.is_discarded() || !v.is_object() || !v.contains("data")) return std::nullopt;
  push::plain_message m;
  if (v.contains("broadcast") && !v["broadcast"].is_boolean()) return std::nullopt;  // value() would throw
  m.broadcast = v.value("broadcast", false);
  const int kinds = int(v.contains("user")) + int(v.contains("users")) + int(m.broadcast);
  if (kinds != 1 || (v.contains("users") && !v["users"].is_array())) return std::nullopt;
  if (v.contains("user")) m.users.push_back(user_text(v["user"]));
  if (v.contains("users"))
    for (const auto& u : v["users"]) m.users.push_back(user_text(u));
  if (!m.broadcast && (m.users.empty() || std::any_of(m.users.begin(), m.users.end(), [](const auto& u) { return u.empty(); })))
    return std::nullopt;
  constexpr auto replace = ojson::error_handler_t::replace;
  m.data = v["data"].dump(-1, ' ', false, replace);
  if (v.contains("id")) m.id = v["id"].dump(-1, ' ', false, replace);
  return m;
}

void same_as_tree(const std::string& line) {
  INFO(line);
  const auto fast = push::read_plain_message(line);
  if (!fast) return;  // left to the tree: always the same result
  const auto tree = from_tree(line);
  REQUIRE(tree);
  CHECK(fast->users == tree->users);
  CHECK(fast->broadcast == tree->broadcast);
  CHECK(fast->data == tree->data);
  CHECK(fast->id == tree->id);
}

}  // namespace

TEST_CASE("plain message: the parts of a push message, as the tree gives them", "[push]") {
  const std::vector<std::string> plain = {
      R"({"user":"u1","data":{"n":1}})",
      R"( { "user" : "u1" , "data" : { "n" : 1 , "s" : [ 1 , 2.50 , -0 , 1e2 , true , null , "x" ] } } )",
      R"({"user":42,"data":"text"})",
      R"({"user":-7,"data":[]})",
      R"({"users":["a","b",3,"a"],"data":{},"id":{"z":1,"a":[{}]}})",
      R"({"broadcast":true,"data":null,"id":"m-1"})",
      R"({"data":{"q":"\"\\\/\b\f\n\r\t\u0001\u001f\u007f\u00e9\ud83d\ude00"},"user":"\u0075"})",
      R"({"user":"u","data":18446744073709551616,"id":123456789012345678901234567890})",
      R"({"user":"u","data":{"a":{"b":{"c":[[[]]]}}},"extra":{"a":1,"a":2},"broadcast":false})",
      "\xEF\xBB\xBF{\"user\":\"u\",\"data\":1}",  // nlohmann skips a UTF-8 BOM
      R"({"user":"é","data":"€"})",
  };
  for (const auto& line : plain) {
    INFO(line);
    CHECK(push::read_plain_message(line));
    same_as_tree(line);
  }
  const auto m = push::read_plain_message(R"({"users":["a","b",3],"data":{"n":1,"m":[1,{"x":null}]},"id":7})");
  REQUIRE(m);
  CHECK(m->users == std::vector<std::string>{"a", "b", "3"});
  CHECK(m->data == R"({"n":1,"m":[1,{"x":null}]})");
  CHECK(m->id == "7");
  CHECK_FALSE(m->broadcast);
}

TEST_CASE("plain message: what is not plainly a message is left to the tree", "[push]") {
  const std::vector<std::string> not_plain = {
      "", " ", "null", "1", R"("x")", "[]", "{}", "{", R"({"user":"u","data":1} x)", R"({"user":"u","data":1}})",
      R"({"user":"u"})",                                // no data
      R"({"data":1})",                                  // no user
      R"({"user":"u","users":["v"],"data":1})",         // two kinds
      R"({"user":"u","broadcast":true,"data":1})",
      R"({"broadcast":false,"data":1})",
      R"({"broadcast":1,"data":1})",                    // the tree's value() throws on it
      R"({"broadcast":"true","data":1})",
      R"({"users":"u","data":1})",                      // not an array
      R"({"users":[],"data":1})",
      R"({"users":["a",["b"]],"data":1})",
      R"({"users":["a",{"b":1}],"data":1})",
      R"({"users":["a",null],"data":1})",
      R"({"users":["a",1.5],"data":1})",
      R"({"user":"","data":1})",
      R"({"user":true,"data":1})",
      R"({"user":null,"data":1})",
      R"({"user":["u"],"data":1})",
      R"({"user":{"u":1},"data":1})",
      R"({"user":"u","data":1,"user":"v"})",            // a member twice
      R"({"user":"u","data":1,"data":2})",
      R"({"user":"u","data":{"a":1,"a":2}})",           // a name twice in data
      R"({"user":"u","data":1,"id":{"a":{"b":1,"b":1}}})",
      R"({"user":"u","data":01})",                      // not JSON
      R"({"user":"u","data":"\ud800"})",
      "{\"user\":\"u\",\"data\":\"\xff\"}",
      "{\"user\":\"u\",\"data\":\"a\nb\"}",
      R"({"user":"u","data":1,/*c*/"id":1})",
  };
  for (const auto& line : not_plain) {
    INFO(line);
    CHECK_FALSE(push::read_plain_message(line));
  }
  std::string wide = R"({"user":"u","data":{)";
  for (std::size_t i = 0; i <= push::max_object_members; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  wide += "}}";
  CHECK_FALSE(push::read_plain_message(wide));
  CHECK(from_tree(wide));
}

namespace {

// What ws-push takes from a POST /push line as a tree (nlohmann::json: objects are std::maps), or
// nullopt when it answers with an error for the line.
std::optional<push::plain_message> from_node_tree(const std::string& line) {
  using json = nlohmann::json;
  const auto msg = json::parse(line, nullptr, false);
  if (msg.is_discarded() || !msg.is_object() || !msg.contains("data")) return std::nullopt;
  if ((msg.contains("broadcast") && !msg["broadcast"].is_boolean()) || (msg.contains("stored") && !msg["stored"].is_boolean()))
    return std::nullopt;  // value() would throw
  push::plain_message m;
  m.broadcast = msg.value("broadcast", false);
  auto user_text = [](const json& u) -> std::string {
    if (u.is_string()) return u.get<std::string>();
    if (u.is_number_integer()) return u.dump();
    return {};
  };
  if (msg.contains("user")) m.users.push_back(user_text(msg["user"]));
  if (msg.contains("users") && msg["users"].is_array())
    for (const auto& u : msg["users"]) m.users.push_back(user_text(u));
  const int kinds = int(msg.contains("user")) + int(msg.contains("users")) + int(m.broadcast);
  if (kinds != 1 || std::any_of(m.users.begin(), m.users.end(), [](const std::string& t) { return t.empty(); }) ||
      (msg.contains("users") && !msg["users"].is_array()))
    return std::nullopt;
  m.data = msg["data"].dump();
  if (msg.contains("id")) m.id = msg["id"].dump();
  if (msg.contains("ref")) m.ref = msg["ref"].dump();
  m.stored = msg.value("stored", false);
  return m;
}

constexpr push::plain_options node{.sorted_names = true, .node_members = true};

}  // namespace

TEST_CASE("plain message, as ws-push reads it: names in order, ref and stored", "[push]") {
  const std::vector<std::string> plain = {
      R"({"users":["u1"],"data":{"n":1}})",
      R"({"user":"u1","data":{"a":1,"b":{"x":[{"k":1,"l":2}]}},"id":"1-0","stored":true,"ref":{"a":1,"z":2}})",
      R"({"broadcast":true,"data":[3,2,1],"id":{"a":[],"b":null},"stored":false})",
      R"({"user":"u","data":{"B":1,"a":2,"é":3}})",  // byte order: "B" < "a" < "é"
  };
  for (const auto& line : plain) {
    INFO(line);
    const auto fast = push::read_plain_message(line, node);
    REQUIRE(fast);
    const auto tree = from_node_tree(line);
    REQUIRE(tree);
    CHECK(fast->users == tree->users);
    CHECK(fast->broadcast == tree->broadcast);
    CHECK(fast->data == tree->data);
    CHECK(fast->id == tree->id);
    CHECK(fast->ref == tree->ref);
    CHECK(fast->stored == tree->stored);
  }
  for (const char* line : {
           R"({"user":"u","data":{"b":1,"a":2}})",  // a tree sorts them: left to it
           R"({"user":"u","data":1,"id":{"b":1,"a":2}})",
           R"({"user":"u","data":1,"ref":{"b":{"y":1,"x":1}}})",
           R"({"user":"u","data":{"a":1,"a":2}})",
           R"({"user":"u","data":1,"stored":1})",
           R"({"user":"u","data":1,"stored":"true"})",
           R"({"user":"u","data":1,"ref":1,"ref":2})",
       }) {
    INFO(line);
    CHECK_FALSE(push::read_plain_message(line, node));
  }
  // Without node_members, ref and stored are members like any other (push-route passes them on in the original).
  const auto m = push::read_plain_message(R"({"user":"u","data":{"b":1,"a":2},"ref":{"y":1,"x":1},"stored":7})");
  REQUIRE(m);
  CHECK(m->data == R"({"b":1,"a":2})");
  CHECK(m->ref.empty());
  CHECK_FALSE(m->stored);
}

TEST_CASE("plain message: nested at most max_depth deep, the line's object included", "[push]") {
  auto nested = [](std::size_t levels) {  // a message whose containers nest `levels` deep
    return R"({"user":"u","data":)" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  CHECK(push::nesting_depth(nested(push::max_depth)) == push::max_depth);
  CHECK(push::read_plain_message(nested(push::max_depth)));
  CHECK(push::read_plain_message(nested(push::max_depth), node));
  // Deeper: left to the tree, which rejects it (a tree that deep overflowed the stack of dump()).
  CHECK(push::nesting_depth(nested(push::max_depth + 1)) == push::max_depth + 1);
  CHECK_FALSE(push::read_plain_message(nested(push::max_depth + 1)));
  CHECK_FALSE(push::read_plain_message(nested(push::max_depth + 1), node));
  CHECK_FALSE(push::read_plain_message(nested(100000)));
  CHECK(push::nesting_depth(nested(100000)) == 100000);
  // Brackets in strings do not count, escaped quotes do not end them.
  CHECK(push::nesting_depth("1") == 0);
  CHECK(push::nesting_depth(R"("[{")") == 0);
  CHECK(push::nesting_depth(R"({"a":"[[{\"[","b":[{}],"c":"\\","d":"]]"})") == 3);
  CHECK(push::nesting_depth(R"([[],[[]],{}])") == 3);
  // nlohmann's reading ends at a NUL byte (json::parse takes the line): so does the depth's.
  const std::string nul = std::string(R"({"user":"u","data":[1]})") + '\0' + "]]]]]][[[[[[[[[";
  CHECK(push::nesting_depth(nul) == 2);
  REQUIRE(push::read_plain_message(nul));
  CHECK(push::read_plain_message(nul)->data == "[1]");
}
