#include "pipekit/eth/event_log.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pipekit::eth {
namespace {

using nlohmann::json;

json member(const json& log, const char* name) {
  auto it = log.find(name);
  return it == log.end() ? json(nullptr) : *it;
}

// A JSON-RPC quantity ("0x1a") as a JSON number; null when absent (pending logs).
json quantity(const json& log, const char* name) {
  const json v = member(log, name);
  if (v.is_null() || v.is_number_unsigned()) return v;
  if (v.is_string()) {
    std::string_view s = v.get_ref<const std::string&>();
    std::uint64_t n = 0;
    if (s.starts_with("0x") && s.size() > 2) {
      auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), n, 16);
      if (ec == std::errc() && end == s.data() + s.size()) return n;
    }
  }
  throw abi_error(fmt::format("log field \"{}\" must be a hex quantity, not {}", name, v.dump()));
}

bytes hex_field(const json& v, const char* what) {
  if (!v.is_string()) throw abi_error(fmt::format("log field \"{}\" must be a hex string", what));
  return from_hex(v.get_ref<const std::string&>());
}

bool topic0_is(const abi_event& ev, const bytes& topic) {
  const auto t0 = ev.topic0();
  return std::equal(topic.begin(), topic.end(), t0.begin(), t0.end());
}

std::size_t indexed_count(const abi_event& ev) {
  return static_cast<std::size_t>(std::count_if(ev.inputs.begin(), ev.inputs.end(), [](const abi_param& p) { return p.indexed; }));
}

json address_of(const json& v) {
  if (!v.is_string()) return v;
  try {
    bytes b = from_hex(v.get_ref<const std::string&>());
    if (b.size() == 20) return checksum_address(std::span<const std::uint8_t, 20>(b.data(), 20));
  } catch (const abi_error&) {
  }
  return v;
}

}  // namespace

log_decoder::log_decoder(const abi_file* abi, std::string_view event) {
  if (event.empty()) {
    if (abi != nullptr)
      std::copy_if(abi->events().begin(), abi->events().end(), std::back_inserter(events_),
                   [](const abi_event& e) { return !e.anonymous; });
    return;
  }
  if (event.find('(') != std::string_view::npos) {
    abi_event parsed = parse_event(event);
    const abi_event* in_abi = nullptr;
    if (abi != nullptr)
      for (const auto& e : abi->events())
        if (e.signature() == parsed.signature() && e.anonymous == parsed.anonymous) in_abi = &e;
    named_.push_back(in_abi != nullptr ? *in_abi : std::move(parsed));
  } else {
    if (abi == nullptr)
      throw abi_error(fmt::format("event {}: a name is looked up in the contract's ABI, and none was given; or give a "
                                  "signature such as '{}(uint256 indexed a)'",
                                  event, event));
    for (const auto& e : abi->events())
      if (e.name == event) named_.push_back(e);
    if (named_.empty()) throw abi_error(fmt::format("no event \"{}\" in the ABI", event));
  }
  events_ = named_;
}

json log_decoder::record(const json& log) const {
  if (!log.is_object()) throw abi_error("a log must be a JSON object");
  const json topics_json = member(log, "topics");
  if (!topics_json.is_array()) throw abi_error("log field \"topics\" must be an array");
  std::vector<bytes> topics;
  for (const auto& t : topics_json) topics.push_back(hex_field(t, "topics"));
  const json data_json = member(log, "data");
  const bytes data = hex_field(data_json, "data");

  json rec = {{"event", nullptr}};
  std::string failure;
  for (const auto& ev : events_) {
    if (ev.anonymous ? topics.size() != indexed_count(ev) : topics.empty() || !topic0_is(ev, topics[0])) continue;
    try {
      json args = args_by_name(ev, decode_log(ev, topics, data));
      rec = {{"event", ev.name}, {"signature", ev.signature()}, {"args", std::move(args)}};
      failure.clear();
      break;
    } catch (const abi_error& e) {
      failure = fmt::format("{}: {}", ev.signature(), e.what());
    }
  }
  const json removed = member(log, "removed");
  rec["address"] = address_of(member(log, "address"));
  rec["block_number"] = quantity(log, "blockNumber");
  rec["block_hash"] = member(log, "blockHash");
  rec["tx_hash"] = member(log, "transactionHash");
  rec["log_index"] = quantity(log, "logIndex");
  rec["removed"] = removed.is_boolean() && removed.get<bool>();
  if (rec["event"].is_null()) {
    rec["topics"] = topics_json;
    rec["data"] = data_json;
    if (!failure.empty()) rec["error"] = failure;
  }
  return rec;
}

json args_by_name(const abi_event& event, json decoded) {
  if (decoded.is_object() || !decoded.is_array() || decoded.size() != event.inputs.size()) return decoded;
  json out = json::object();
  std::set<std::string> seen;
  for (std::size_t i = 0; i < event.inputs.size(); ++i) {
    const std::string& name = event.inputs[i].name;
    std::string key = !name.empty() && seen.insert(name).second ? name : std::to_string(i);
    out[key] = std::move(decoded[i]);
  }
  return out;
}

json topic_filter_value(std::string_view text) {
  if (text.empty() || text == "null") return nullptr;
  json any = json::array();
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.starts_with("0x") && !item.starts_with("0X"))
      throw abi_error(fmt::format("\"{}\" is not 0x-hex (a topic is 32 bytes of hex; 'null' for any)", item));
    bytes b = from_hex(item);
    if (b.size() > 32) throw abi_error(fmt::format("\"{}\" is longer than 32 bytes", item));
    bytes padded(32 - b.size(), 0);
    padded.insert(padded.end(), b.begin(), b.end());
    any.push_back(to_hex(padded));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return any.size() == 1 ? any[0] : any;
}

json log_filter(const std::vector<std::string>& addresses, const log_decoder& decoder, const std::vector<std::string>& topics) {
  json filter = json::object();
  if (!addresses.empty()) {
    json list = json::array();
    for (const auto& a : addresses) {
      if (a.size() != 42 || !a.starts_with("0x") || find_non_hex(std::string_view(a).substr(2)) != std::string_view::npos)
        throw abi_error(fmt::format("address {}: not an address (0x and 40 hex digits)", a));
      list.push_back(a);
    }
    filter["address"] = list.size() == 1 ? list[0] : list;
  }
  json positions = json::array();
  json topic0 = json::array();
  for (const auto& ev : decoder.named_events())
    if (!ev.anonymous) topic0.push_back(to_hex(ev.topic0()));
  if (!topic0.empty()) positions.push_back(topic0.size() == 1 ? topic0[0] : topic0);
  for (const auto& t : topics) {
    try {
      positions.push_back(topic_filter_value(t));
    } catch (const abi_error& e) {
      throw abi_error(fmt::format("topic {}: {}", t, e.what()));
    }
  }
  while (!positions.empty() && positions.back().is_null()) positions.erase(positions.end() - 1);
  if (!positions.empty()) filter["topics"] = std::move(positions);
  return filter;
}

}  // namespace pipekit::eth
