#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// push-route's reading of an input line in the push message shape,
// {"user"|"users"|"broadcast", "data", "id"}, without a JSON tree: nlohmann's own parser (the same
// lexer and grammar as json::parse) drives a handler that keeps the users and writes data and id
// back as compact JSON text as they are read. A tree costs an allocation per value and a walk to
// free it, for a line whose parts are only passed on.
namespace pipekit::push {

struct plain_message {
  std::vector<std::string> users;  // "user" or "users" as given (strings, integers in decimal)
  bool broadcast = false;
  std::string data;  // "data" as nlohmann's compact dump (ordered_json) writes it
  std::string id;    // "id" the same way; empty when there is none
  std::string ref;   // with node_members: "ref" the same way; empty when there is none
  bool stored = false;  // with node_members: "stored": true
};

struct plain_options {
  // ws-push reads lines into nlohmann::json, whose objects are std::maps: the members of every
  // object in data, id and ref must be in that order (then the dump is the same as the map's).
  bool sorted_names = false;
  // ws-push's lines also carry "ref" (a JSON value) and "stored" (a boolean).
  bool node_members = false;
};

// The parts of `line` when it is plainly a valid push message: a JSON object with "data" and
// exactly one of "user" (a non-empty string or an integer), "users" (an array of those, not empty)
// or "broadcast": true, no member named twice, and no object in data or id with more than
// max_object_members members (with sorted_names: whose members are in the order of their
// names), and with node_members a "stored" that is a boolean, nested at most max_depth deep.
// nullopt for anything else (invalid JSON, another shape, a line that must be rejected), which
// the caller reads as a JSON tree, as before: for every line, the result is the one that tree
// gives.
std::optional<plain_message> read_plain_message(std::string_view line, plain_options opts = {});

// Containers nested deeper than this in a line (its own object is the first) make it an invalid
// message: nlohmann's dump() recurses once per level, and a line of 200 kB nested 100,000 deep
// overflowed the stack of push-route and ws-push. The bound of pipekit::json::parse.
constexpr std::size_t max_depth = 128;

// How deep the containers of `text` nest (0 for a scalar), up to a NUL byte, where nlohmann's
// reading ends. REQUIRES: text is JSON that json::parse takes.
std::size_t nesting_depth(std::string_view text);

// Appends `s` as a JSON string, as nlohmann's compact dump writes it ('"', '\\' and control
// characters escaped, the rest as it is). REQUIRES: s is valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

constexpr std::size_t max_object_members = 64;  // beyond: duplicate names are not looked for here

}  // namespace pipekit::push
