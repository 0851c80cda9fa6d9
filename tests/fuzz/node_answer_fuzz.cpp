// libFuzzer target for push-route's reading of a ws-push node's answer line without a JSON parse
// (pipekit::push::delivered_to_all, lib/pipekit/push/node_answer.cpp).
// Input: one answer line's bytes. Findings: a crash, UB, or a text read as "delivered K to every
// user" that nlohmann does not read the same way (not an object; "error" or "offline" in it; or
// "delivered" not K), which would make push-route count a message delivered that was not.
//
//   make -f Makefile.dist fuzz       (sources: node_answer_fuzz_SOURCES; corpus: corpus_node_answer)
#include "pipekit/push/node_answer.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "node_answer_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto n = pipekit::push::delivered_to_all(text);
  if (!n) return 0;
  const auto j = nlohmann::json::parse(text, nullptr, false);
  require(j.is_object(), "read as delivered, but not a JSON object");
  require(!j.contains("error") && !j.contains("offline"), "read as delivered, but has error or offline");
  require(j.size() == 2 && j.contains("line") && j["line"].is_number_unsigned(), "other members than line and delivered");
  require(j.contains("delivered") && j["delivered"].is_number_unsigned() && j["delivered"].get<std::size_t>() == *n,
          "delivered differs from nlohmann's reading");
  return 0;
}
