// ethcall decode-event: JSON-RPC log objects in, log records out (design section 7).
#include <charconv>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/json/parse.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
using pipekit::fatal;

// A JSON-RPC quantity ("0x1a") or a plain number; null when absent (pending logs).
json quantity(const json& log, const char* name) {
  auto it = log.find(name);
  if (it == log.end() || it->is_null()) return nullptr;
  if (it->is_number_unsigned()) return *it;
  std::uint64_t v = 0;
  if (it->is_string()) {
    std::string_view s = it->get_ref<const std::string&>();
    if (s.starts_with("0x") && s.size() > 2) {
      auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
      if (ec == std::errc() && end == s.data() + s.size()) return v;
    }
  }
  throw request_error(fmt::format("field \"{}\" must be a hex quantity such as \"0x1a\"", name));
}

json optional_field(const json& log, const char* name) {
  auto it = log.find(name);
  return it == log.end() ? json(nullptr) : *it;
}

struct decode_event_cmd {
  common_flags common;
  std::string abi_path;
  std::string event_sig;  // --sig: one human-readable event instead of an ABI file
  std::string event_name;
  std::string log_text = "-";

  std::vector<eth::abi_event> events;

  void load() {
    if (abi_path.empty() == event_sig.empty())
      fatal(exit_code::usage, "decode-event needs one of --abi FILE or --sig EVENT");
    if (abi_path.empty()) events.push_back(eth::parse_event(event_sig));
    else events = load_abi(abi_path)->events();
    if (!event_name.empty()) {
      std::erase_if(events, [&](const eth::abi_event& e) { return e.name != event_name && e.signature() != event_name; });
      if (events.empty())
        fatal(exit_code::data_error, "{}: no event named \"{}\"", abi_path.empty() ? "--sig" : abi_path, event_name);
    }
  }

  json decode(const json& log) const {
    if (!log.is_object()) throw request_error("expected a log object with \"topics\" and \"data\"");
    const json& topics_json = field(log, "topics");
    if (!topics_json.is_array()) throw request_error("field \"topics\" must be an array");
    std::vector<eth::bytes> topics;
    for (const auto& t : topics_json) {
      if (!t.is_string()) throw request_error("field \"topics\" must hold hex strings");
      topics.push_back(hex_arg(t.get_ref<const std::string&>(), "topics"));
    }
    const std::string& data_hex = string_field(log, "data");
    const eth::bytes data = hex_arg(data_hex, "data");
    const json removed = optional_field(log, "removed");
    if (!removed.is_null() && !removed.is_boolean()) throw request_error("field \"removed\" must be true or false");

    json rec = {{"event", nullptr}};
    std::string failure;
    for (const auto& ev : events) {
      if (!ev.anonymous) {
        const auto topic0 = ev.topic0();
        if (topics.empty() || !std::equal(topics[0].begin(), topics[0].end(), topic0.begin(), topic0.end())) continue;
      }
      try {
        json args = eth::decode_log(ev, topics, data);
        rec = {{"event", ev.name}, {"signature", ev.signature()}, {"args", std::move(args)}};
        failure.clear();
        break;
      } catch (const eth::abi_error& e) {
        failure = fmt::format("{}: {}", ev.signature(), e.what());
      }
    }
    rec["address"] = optional_field(log, "address");
    rec["block_number"] = quantity(log, "blockNumber");
    rec["block_hash"] = optional_field(log, "blockHash");
    rec["tx_hash"] = optional_field(log, "transactionHash");
    rec["log_index"] = quantity(log, "logIndex");
    rec["removed"] = removed.is_boolean() && removed.get<bool>();
    if (rec["event"].is_null()) {
      rec["topics"] = topics_json;
      rec["data"] = data_hex;
      if (!failure.empty()) rec["error"] = failure;
    }
    return rec;
  }

  int run() {
    load();
    if (log_text == "-") return run_lines(common, [&](const json& req) { return decode(req); }, framing::bare);
    auto log = pipekit::json::parse(log_text);
    if (!log.ok()) fatal(exit_code::data_error, "LOG: {}", log.error);
    try {
      return print_result(decode(log.value), common);
    } catch (const request_error& e) {
      fatal(exit_code::data_error, "LOG: {}", e.what());
    }
  }
};

}  // namespace

void add_decode_event_command(CLI::App& app, command_table& commands) {
  static decode_event_cmd cmd;
  auto* ev = app.add_subcommand("decode-event", "Decode event logs (JSON-RPC log objects) into records");
  add_common_flags(ev, cmd.common);
  ev->add_option("--abi", cmd.abi_path, "JSON ABI file with the events")->type_name("FILE");
  ev->add_option("--sig", cmd.event_sig,
                 "One event signature instead of --abi, e.g. 'Transfer(address indexed from,address indexed to,uint256 value)'")
      ->type_name("EVENT");
  ev->add_option("--event", cmd.event_name, "Only this event (name or signature); needed for anonymous events")
      ->type_name("NAME");
  ev->add_option("LOG", cmd.log_text, "A log as JSON; '-' (the default) reads one per stdin line")->capture_default_str();
  commands.add(ev, [] { return cmd.run(); });
}

}  // namespace ethcall
