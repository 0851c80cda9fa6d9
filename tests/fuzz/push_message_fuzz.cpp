// libFuzzer target for what ws-push makes of a client's text message
// (pipekit::push::parse_client_message, lib/pipekit/push/client_message.cpp).
// Input: the message's bytes. Findings: a crash, UB, an exception, a result that differs between
// two parses, invalid_json for text nlohmann accepts (or the reverse), a login whose token or since
// does not survive being written back into a login message and read again.
//
//   make -f Makefile.dist fuzz       (sources: push_message_fuzz_SOURCES; corpus: corpus_push_message)
#include "pipekit/push/client_message.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace {

using namespace pipekit::push;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "push_message_fuzz: %s\n", what);
    std::abort();
  }
}

bool same(const client_message& a, const client_message& b) {
  if (a.index() != b.index()) return false;
  if (const auto* l = std::get_if<login_message>(&a)) {
    const auto& m = std::get<login_message>(b);
    return l->token == m.token && l->since == m.since;
  }
  if (const auto* e = std::get_if<invalid_message>(&a)) return e->error == std::get<invalid_message>(b).error;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const client_message m = parse_client_message(text);
  require(same(m, parse_client_message(text)), "two parses of one message differ");
  const bool json = nlohmann::json::accept(text);
  const auto* invalid = std::get_if<invalid_message>(&m);
  require(json != (invalid != nullptr && invalid->error == invalid_message::reason::invalid_json),
          "invalid_json disagrees with nlohmann::json::accept");
  if (invalid != nullptr) {
    const auto reply = error_reply(invalid->error);
    require(nlohmann::json::accept(reply), "an error reply that is not JSON");
  }
  if (const auto* l = std::get_if<login_message>(&m)) {
    // What was read is valid UTF-8 (the parser checks), so it can be written back and read again.
    nlohmann::json again = {{"type", "login"}};
    if (l->token) again["token"] = *l->token;
    if (l->since) again["since"] = *l->since;
    require(same(m, parse_client_message(again.dump())), "a login does not survive a round trip");
  }
  return 0;
}
