#pragma once
// Event logs as pipekit records (design section 7) and the eth_getLogs filter that selects them:
// what `ethcall logs` uses, and what generated bindings can use to filter and decode their events.
//
// Record: {"event":"Transfer","signature":"Transfer(address,address,uint256)","args":{..},
//          "address":"0x..","block_number":1,"block_hash":"0x..","tx_hash":"0x..","log_index":0,
//          "removed":false}
// args are keyed by parameter name; an unnamed (or repeated) name is keyed by its position ("0",
// "1", ...). Indexed dynamic values (string, bytes, arrays, tuples) are stored by the EVM only as
// a hash: their value is the topic's 0x-hex. A log no candidate event decodes: "event":null,
// with its "topics" and "data" (and "error" when an event matched topic 0 but did not decode).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pipekit/eth/abi.hpp"

namespace pipekit::eth {

class log_decoder {
 public:
  // From an ABI and/or an --event text: empty event -> every event of the ABI; a name -> all
  // overloads of that name in the ABI; a signature ("Transfer(address indexed,...)") -> that
  // event (the ABI's copy when it has one, for its parameter names). Anonymous events decode
  // only when named (matched by topic count). Throws abi_error for an unknown event.
  log_decoder(const abi_file* abi, std::string_view event);

  // A JSON-RPC log object to a record. Throws abi_error for a malformed log object.
  nlohmann::json record(const nlohmann::json& rpc_log) const;

  // The events selected by name or signature (empty when none was given).
  const std::vector<abi_event>& named_events() const { return named_; }

 private:
  std::vector<abi_event> events_;
  std::vector<abi_event> named_;
};

// Shapes decode_log()'s result into the record's args object (names, else positions).
nlohmann::json args_by_name(const abi_event& event, nlohmann::json decoded);

// One topic position of a filter from text: "" or "null" -> null (any); "0x..[,0x..]" -> one
// hash or a list (any of them). Values shorter than 32 bytes (addresses) are left-padded with
// zeros. Throws abi_error.
nlohmann::json topic_filter_value(std::string_view text);

// The eth_getLogs filter (without the block range): addresses (any of them; 0x + 40 hex, else
// abi_error), then topics: topic 0 of the named non-anonymous events (any of them), then
// `topics` in order; when no event is named, or the named ones are all anonymous, `topics` start
// at position 0. Trailing wildcards are dropped.
nlohmann::json log_filter(const std::vector<std::string>& addresses, const log_decoder& decoder,
                          const std::vector<std::string>& topics);

}  // namespace pipekit::eth
