// libFuzzer target for what ethcall makes of a node's answers (lib/pipekit/eth/rpc_response.cpp):
// the text an HTTP body, a WebSocket message or the IPC stream delivers, of any shape.
// Byte 0 picks the method (low 4 bits) and the path (high bits): one answer, a batch answer,
// a notification, or the IPC splitter fed the rest in pieces. node_error, rpc_error and
// transport_error are expected outcomes; anything else (a crash, another exception, a result
// passed on that does not have its method's shape) is a finding.
//
// clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib \
//   tests/fuzz/rpc_response_fuzz.cpp lib/pipekit/eth/rpc_response.cpp lib/pipekit/json/parse.cpp \
//   lib/pipekit/eth/{abi_*,hex,keccak}.cpp -lfmt -o rpc_response_fuzz
// ./rpc_response_fuzz tests/fuzz/corpus_rpc

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pipekit/eth/rpc_response.hpp"

namespace {

using namespace pipekit::eth;

constexpr const char* methods[] = {
    "eth_call",        "eth_chainId",          "eth_blockNumber",           "eth_getBalance",
    "eth_estimateGas", "eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getBlockByNumber",
    "eth_getLogs",     "eth_subscribe",        "eth_gasPrice",              "eth_getTransactionByHash",
    "eth_sendTransaction", "eth_getTransactionCount", "eth_maxPriorityFeePerGas", "rpc_anything",
};

[[noreturn]] void finding(const char* what, std::string_view method) {
  std::fprintf(stderr, "finding: %s (%.*s)\n", what, static_cast<int>(method.size()), method.data());
  std::abort();
}

void one(std::string_view text, std::string_view method) {
  try {
    auto result = parse_answer(text, 1, method);
    if (check_result(method, result)) finding("a result of the wrong shape was passed on", method);
  } catch (const node_error&) {
  } catch (const rpc_error&) {
  }
}

void batch(std::string_view text, std::string_view method) {
  const std::vector<rpc_request> requests = {{std::string(method), {}}, {"eth_call", {}}, {"eth_chainId", {}}};
  try {
    auto replies = parse_batch_answer(text, 1, requests);
    if (replies.size() != requests.size()) finding("a batch answer of another size", method);
    for (std::size_t i = 0; i < replies.size(); ++i)
      if (replies[i].ok() && check_result(requests[i].method, replies[i].result))
        finding("a batch result of the wrong shape was passed on", requests[i].method);
  } catch (const node_error&) {
  } catch (const rpc_error&) {
  }
}

void notification(std::string_view text) {
  try {
    if (is_notification(text)) (void)parse_notification(text);
  } catch (const node_error&) {
  }
}

// The IPC path: the stream in pieces of varying size, each message then handled as an answer.
void ipc(std::string_view text, std::string_view method) {
  json_stream_splitter splitter(1 << 16);
  std::size_t piece = 1;
  try {
    while (!text.empty()) {
      std::size_t n = std::min(piece, text.size());
      splitter.append(text.substr(0, n));
      text.remove_prefix(n);
      piece = piece * 3 % 17 + 1;
      while (auto m = splitter.next()) {
        if (m->empty() || (m->front() != '{' && m->front() != '[')) finding("the splitter cut a message wrong", method);
        if (is_notification(*m)) notification(*m);
        else one(*m, method);
      }
    }
  } catch (const transport_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view method = methods[data[0] & 0x0f];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] >> 4 & 3) {
    case 0: one(text, method); break;
    case 1: batch(text, method); break;
    case 2: notification(text); break;
    case 3: ipc(text, method); break;
  }
  return 0;
}
