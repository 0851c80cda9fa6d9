// libFuzzer target for push-route's reading of an input line without a JSON tree
// (pipekit::push::read_plain_message, lib/pipekit/push/message_reader.cpp).
// Input: one line's bytes. Findings: a crash, UB, an exception, or a line read as a plain message
// whose parts differ from what push-route takes from the line as a tree (users, broadcast, data
// and id as compact JSON text), or that push-route would reject (nested deeper than max_depth
// too); the same for ws-push's reading of a POST /push line (names in std::map order, ref and
// stored).
//
//   make -f Makefile.dist fuzz       (sources: push_line_fuzz_SOURCES; corpus: corpus_push_line)
#include "pipekit/push/message_reader.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using ojson = nlohmann::ordered_json;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "push_line_fuzz: %s\n", what);
    std::abort();
  }
}

template <class Json>
std::string user_text(const Json& u) {
  if (u.is_string()) return u.template get<std::string>();
  if (u.is_number_integer() || u.is_number_unsigned()) return u.dump();
  return {};
}

// ws-push's reading of a POST /push line as a tree (server.cpp; nlohmann::json, whose objects are
// std::maps): the same parts, with ref and stored.
void check_node(const std::string& line) {
  using json = nlohmann::json;
  const auto fast = pipekit::push::read_plain_message(line, {.sorted_names = true, .node_members = true});
  if (!fast) return;
  require(pipekit::push::nesting_depth(line) <= pipekit::push::max_depth, "node: plain, but nested deeper than max_depth");
  const auto msg = json::parse(line, nullptr, false);
  require(!msg.is_discarded() && msg.is_object() && msg.contains("data"), "node: plain, but not an object with data");
  require((!msg.contains("broadcast") || msg["broadcast"].is_boolean()) && (!msg.contains("stored") || msg["stored"].is_boolean()),
          "node: plain, but broadcast or stored is not a boolean");
  const bool broadcast = msg.value("broadcast", false);
  std::vector<std::string> users;
  if (msg.contains("user")) users.push_back(user_text(msg["user"]));
  if (msg.contains("users") && msg["users"].is_array())
    for (const auto& u : msg["users"]) users.push_back(user_text(u));
  const int kinds = int(msg.contains("user")) + int(msg.contains("users")) + int(broadcast);
  require(kinds == 1 && std::none_of(users.begin(), users.end(), [](const auto& u) { return u.empty(); }) &&
              (!msg.contains("users") || msg["users"].is_array()),
          "node: plain, but the tree rejects it");
  require(fast->broadcast == broadcast && fast->users == users, "node: users or broadcast differ from the tree's");
  require(fast->data == msg["data"].dump(), "node: data differs from the tree's dump");
  require(fast->id == (msg.contains("id") ? msg["id"].dump() : std::string()), "node: id differs from the tree's dump");
  require(fast->ref == (msg.contains("ref") ? msg["ref"].dump() : std::string()), "node: ref differs from the tree's dump");
  require(fast->stored == msg.value("stored", false), "node: stored differs from the tree's");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  check_node(line);
  const auto fast = pipekit::push::read_plain_message(line);
  if (!fast) return 0;
  require(pipekit::push::nesting_depth(line) <= pipekit::push::max_depth, "plain, but nested deeper than max_depth (the tree rejects it)");
  // push-route's reading as a tree (router.cpp, without pointers): it must take the line, the same way.
  const auto v = ojson::parse(line, nullptr, false);
  require(!v.is_discarded() && v.is_object() && v.contains("data"), "plain, but not an object with data");
  require(!v.contains("broadcast") || v["broadcast"].is_boolean(), "plain, but broadcast is not a boolean");
  const bool broadcast = v.value("broadcast", false);
  const int kinds = int(v.contains("user")) + int(v.contains("users")) + int(broadcast);
  require(kinds == 1 && (!v.contains("users") || v["users"].is_array()), "plain, but the tree rejects its kind");
  std::vector<std::string> users;
  if (v.contains("user")) users.push_back(user_text(v["user"]));
  if (v.contains("users"))
    for (const auto& u : v["users"]) users.push_back(user_text(u));
  require(broadcast || (!users.empty() && std::none_of(users.begin(), users.end(), [](const auto& u) { return u.empty(); })),
          "plain, but the tree rejects its users");
  require(fast->broadcast == broadcast && fast->users == users, "users or broadcast differ from the tree's");
  constexpr auto replace = ojson::error_handler_t::replace;
  require(fast->data == v["data"].dump(-1, ' ', false, replace), "data differs from the tree's dump");
  require(fast->id == (v.contains("id") ? v["id"].dump(-1, ' ', false, replace) : std::string()), "id differs from the tree's dump");
  return 0;
}
