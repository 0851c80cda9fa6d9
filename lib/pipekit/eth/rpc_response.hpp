#pragma once
// What rpc_client makes of the node's answers, apart from the sockets that carry them: every
// transport's text goes through here, and so does the fuzz target (tests/fuzz/rpc_response_fuzz).
// The node is not trusted: an answer that is not JSON-RPC, answers another request, or holds a
// result of the wrong shape for its method is a node_error, never passed on as a result.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/rpc_transport.hpp"

namespace pipekit::eth {

// The node sent something it should not have. The message names the method and what came back
// (shortened, escaped), not the URL: rpc_client adds that (and exits 69).
struct node_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A JSON value as a message shows it: compact, non-ASCII and control characters escaped, cut
// to about max_chars with "..." and the full size.
std::string shown(const nlohmann::json& v, std::size_t max_chars = 200);

// Why result is not what method returns ("not 0x-hex data"), or nullopt when it is. Known
// methods: eth_call (hex data), quantities (eth_chainId, eth_blockNumber, eth_getBalance, ...:
// 0x-hex of at most 256 bits), hashes (eth_sendRawTransaction, eth_sendTransaction), records that
// may be null (blocks, transactions, receipts), eth_getLogs (an array), eth_subscribe (a string).
// Any other method's result is taken as it comes.
std::optional<std::string> check_result(std::string_view method, const nlohmann::json& result);

// The result of text, the answer to request `id` of `method`. Throws rpc_error for the node's
// error object, node_error for anything else that is not a well-formed answer to that request.
nlohmann::json parse_answer(std::string_view text, std::int64_t id, std::string_view method);

// The answers to a batch whose ids run from first_id, in request order (the node may use any
// order). Throws rpc_error when the node refused the whole batch, node_error when the text is
// not a batch answer. A request left unanswered, answered twice, or given a result of the wrong
// shape gets an error reply of its own (code -32603).
std::vector<rpc_reply> parse_batch_answer(std::string_view text, std::int64_t first_id,
                                          std::span<const rpc_request> requests);

// Whether a message on a stream (ws, ipc) is a subscription notification rather than an answer.
bool is_notification(std::string_view text);
// A notification's params.result. Throws node_error.
nlohmann::json parse_notification(std::string_view text);

// IPC carries JSON values back to back (geth ends each with "\n", others may not): this finds
// where each top-level value ends by tracking nesting and strings. Hand-written: no library
// splits a JSON stream without parsing every value twice.
class json_stream_splitter {
 public:
  explicit json_stream_splitter(std::size_t max_message) : max_message_(max_message) {}
  void append(std::string_view data) { buf_.append(data); }

  // The next complete value, or nullopt when more bytes are needed. Throws transport_error for
  // bytes that cannot start a JSON-RPC message, response_too_large for one over max_message.
  std::optional<std::string> next();
  void clear() { *this = json_stream_splitter(max_message_); }

 private:
  std::size_t max_message_;
  std::string buf_;
  std::size_t pos_ = 0, start_ = 0;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
};

}  // namespace pipekit::eth
