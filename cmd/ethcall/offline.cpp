// ethcall's offline subcommands: keccak, selector, calldata, abi-encode, abi-decode,
// decode-calldata, decode-error, decode-event. Each takes its input from arguments, or,
// given "-", one JSON request per stdin line, answered by {"id":..,"result":..} lines.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/keccak.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/io/rejects.hpp"

namespace ethcall {
namespace {

using nlohmann::json;
namespace eth = pipekit::eth;
namespace io = pipekit::io;
namespace exit_code = pipekit::exit_code;
using pipekit::fatal;

// A request line that is valid JSON but not a request this command understands.
struct request_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::size_t max_cached_signatures = 4096;

// Flags shared by the offline subcommands.
struct common_flags {
  std::string rejects;  // stdin mode: JSON reject records also go here
  bool bare_text = false;  // a string result (hex, hash) is printed as text, unless --json
};

void add_common_flags(CLI::App* sub, common_flags& f) {
  sub->add_option("--rejects", f.rejects, "With '-': also write rejected lines as JSON records to FILE")
      ->type_name("FILE");
}

// Commands whose result is hex text print it bare, as cast does; --json quotes it.
void add_text_result_flags(CLI::App* sub, common_flags& f) {
  add_common_flags(sub, f);
  f.bare_text = true;
  sub->add_flag_callback("--json", [&f] { f.bare_text = false; }, "Print the result as a JSON string, not bare text");
}

// ---- input helpers ----

const json& field(const json& req, const char* name) {
  if (!req.is_object()) throw request_error(fmt::format("expected a JSON object with \"{}\"", name));
  auto it = req.find(name);
  if (it == req.end()) throw request_error(fmt::format("missing field \"{}\"", name));
  return *it;
}

const std::string& string_field(const json& req, const char* name) {
  const json& v = field(req, name);
  if (!v.is_string()) throw request_error(fmt::format("field \"{}\" must be a string", name));
  return v.get_ref<const std::string&>();
}

// A line that is a bare JSON string, or an object with that string under `name`.
const std::string& string_or_field(const json& req, const char* name) {
  if (req.is_string()) return req.get_ref<const std::string&>();
  return string_field(req, name);
}

const json& args_of(const json& req) {
  if (req.is_array()) return req;
  const json& a = field(req, "args");
  if (!a.is_array() && !a.is_object()) throw request_error("field \"args\" must be an array or an object");
  return a;
}

eth::bytes hex_arg(std::string_view text, std::string_view what) {
  try {
    return eth::from_hex(text);
  } catch (const eth::abi_error& e) {
    throw eth::abi_error(fmt::format("{}: {}", what, e.what()));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fatal(exit_code::no_input, "{}: cannot open: {}", path, std::strerror(errno));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Where a JSON text stops being JSON, as "invalid JSON at column N: reason".
std::string json_error(std::string_view text) {
  try {
    json ignored = json::parse(text);
  } catch (const json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while
    // parsing value - invalid literal; last read: 'no'" -> "invalid literal; last read: 'no'"
    std::string what = e.what();
    auto dash = what.find(" - ");
    return fmt::format("invalid JSON at column {}: {}", e.byte, dash == std::string::npos ? what : what.substr(dash + 3));
  }
  return "invalid JSON";
}

std::optional<eth::abi_file> load_abi(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::string text = read_file(path);
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) fatal(exit_code::data_error, "{}: {}", path, json_error(text));
  try {
    return eth::abi_file::parse(doc);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::data_error, "{}: {}", path, e.what());
  }
}

// Parsing a signature is the slow part of a request; stdin mode usually repeats a few.
class signature_cache {
 public:
  const eth::abi_function& get(const std::string& sig) {
    auto it = map_.find(sig);
    if (it != map_.end()) return it->second;
    if (map_.size() >= max_cached_signatures) map_.clear();
    return map_.emplace(sig, eth::parse_signature(sig)).first->second;
  }

 private:
  std::unordered_map<std::string, eth::abi_function> map_;
};

// Arguments: for --json-args one JSON array; otherwise one text per parameter (cast style).
json cli_args(const std::vector<eth::abi_param>& params, const std::vector<std::string>& texts, bool json_args) {
  if (json_args) {
    if (texts.size() != 1) throw eth::abi_error("--json-args takes the arguments as one JSON array");
    json a = json::parse(texts[0], nullptr, false);
    if (a.is_discarded()) throw eth::abi_error(fmt::format("--json-args: {}", json_error(texts[0])));
    return a;
  }
  if (texts.size() != params.size())
    throw eth::abi_error(fmt::format("expected {} argument{}, got {}", params.size(), params.size() == 1 ? "" : "s",
                                     texts.size()));
  json out = json::array();
  for (std::size_t i = 0; i < params.size(); ++i) {
    try {
      out.push_back(eth::parse_cli_arg(params[i].type, texts[i]));
    } catch (const eth::abi_error& e) {
      throw eth::abi_error(fmt::format("arg {} ({}): {}", i + 1, params[i].type.canonical(), e.what()));
    }
  }
  return out;
}

// Several values keyed by name when every one has a distinct name, else an array.
json named_or_array(const std::vector<eth::abi_param>& params, json values) {
  json obj = json::object();
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].name.empty() || obj.contains(params[i].name)) return values;
    obj[params[i].name] = std::move(values[i]);
  }
  return obj;
}

// ---- output ----

int print_result(const json& result, const common_flags& f) {
  io::line_writer out(STDOUT_FILENO);
  if (result.is_string() && f.bare_text) out.write_line(result.get_ref<const std::string&>());
  else out.write_line(result.dump());
  out.flush();
  return exit_code::ok;
}

// Runs one request given on the command line: errors end the program with 65.
template <class F>
int run_single(const common_flags& f, F&& handle) {
  try {
    return print_result(handle(), f);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::data_error, "{}", e.what());
  }
}

// Runs one request per stdin line; a bad line becomes a reject and the rest go on.
// Results are {"id":..,"result":..} lines, or the bare results for record streams.
enum class framing { envelope, bare };

template <class F>
int run_lines(const common_flags& f, F&& handle, framing frame = framing::envelope) {
  io::line_reader in("-");
  io::line_writer out(STDOUT_FILENO);
  out.batch_until_flush();
  in.on_refill([&] { out.flush(); });
  io::rejects rejects = f.rejects.empty() ? io::rejects() : io::rejects(f.rejects);
  while (auto l = in.next()) {
    if (l->too_long) {
      rejects.add(in.source(), l->number, "line_too_long",
                  fmt::format("line longer than {} bytes", io::default_max_line), "");
      continue;
    }
    json req = json::parse(l->text, nullptr, false);
    if (req.is_discarded()) {
      rejects.add(in.source(), l->number, "invalid_json", json_error(l->text), l->text);
      continue;
    }
    try {
      json result = handle(req);
      if (frame == framing::envelope) {
        json id = req.is_object() && req.contains("id") ? req["id"] : json(l->number);
        result = {{"id", std::move(id)}, {"result", std::move(result)}};
      }
      if (!out.write_line(result.dump())) break;  // the reader has gone: stop quietly
    } catch (const request_error& e) {
      rejects.add(in.source(), l->number, "bad_request", e.what(), l->text);
    } catch (const eth::abi_error& e) {
      rejects.add(in.source(), l->number, "abi_error", e.what(), l->text);
    }
  }
  out.flush();
  rejects.flush();
  return rejects.count() > 0 ? exit_code::data_error : exit_code::ok;
}

std::string hex_of(const auto& bytes) { return eth::to_hex(std::span<const std::uint8_t>(bytes.data(), bytes.size())); }

// ---- keccak ----

struct keccak_cmd {
  common_flags common;
  std::string data;

  static json hash(const std::string& text) {
    if (text.starts_with("0x") || text.starts_with("0X")) return hex_of(eth::keccak256(hex_arg(text, "data")));
    return hex_of(eth::keccak256(std::string_view(text)));
  }
  int run() {
    if (data == "-") return run_lines(common, [](const json& req) { return hash(string_or_field(req, "data")); });
    return run_single(common, [&] { return hash(data); });
  }
};

// ---- selector ----

struct selector_cmd {
  common_flags common;
  std::string sig;

  int run() {
    signature_cache cache;
    if (sig == "-")
      return run_lines(common, [&](const json& req) { return json(hex_of(cache.get(string_or_field(req, "sig")).selector())); });
    return run_single(common, [&] { return json(hex_of(eth::parse_signature(sig).selector())); });
  }
};

// ---- calldata and abi-encode ----

struct encode_cmd {
  common_flags common;
  bool with_selector = false;  // calldata: selector + arguments
  std::string sig;
  std::string abi_path;
  std::vector<std::string> args;
  bool json_args = false;

  json encode(const eth::abi_function& fn, const json& values) const {
    return hex_of(with_selector ? eth::encode_call(fn, values) : eth::encode(fn.inputs, values));
  }

  int run() {
    auto abi = load_abi(abi_path);
    signature_cache cache;
    auto resolve = [&](const std::string& s, std::optional<std::size_t> argc) -> const eth::abi_function& {
      return abi ? abi->function(s, argc) : cache.get(s);
    };
    if (sig == "-") {
      return run_lines(common, [&](const json& req) {
        const json& values = args_of(req);
        const std::string& s = req.contains("function") ? string_field(req, "function") : string_field(req, "sig");
        return encode(resolve(s, values.size()), values);
      });
    }
    if (args.size() == 1 && args[0] == "-") {
      return run_lines(common, [&](const json& req) {
        const json& values = args_of(req);
        return encode(resolve(sig, values.size()), values);
      });
    }
    return run_single(common, [&] {
      const auto& fn = resolve(sig, json_args ? std::nullopt : std::optional<std::size_t>(args.size()));
      return encode(fn, cli_args(fn.inputs, args, json_args));
    });
  }
};

// ---- abi-decode ----

struct decode_cmd {
  common_flags common;
  bool input = false;
  std::string sig;
  std::string data;

  json decode(const eth::abi_function& fn, const std::string& hex) const {
    const auto& params = input ? fn.inputs : fn.outputs;
    if (!input && params.empty())
      throw eth::abi_error(fmt::format("\"{}\" declares no output types: write it as f(inputs)(outputs), or use --input",
                                       fn.signature()));
    return eth::shape_result(params, eth::decode(params, hex_arg(hex, "data")));
  }

  int run() {
    signature_cache cache;
    if (sig == "-")
      return run_lines(common, [&](const json& req) { return decode(cache.get(string_field(req, "sig")), string_field(req, "data")); });
    if (data == "-") {
      const auto& fn = eth::parse_signature(sig);
      return run_lines(common, [&](const json& req) { return decode(fn, string_or_field(req, "data")); });
    }
    return run_single(common, [&] { return decode(eth::parse_signature(sig), data); });
  }
};

// ---- decode-calldata ----

struct decode_calldata_cmd {
  common_flags common;
  std::string abi_path;
  std::vector<std::string> positionals;  // [SIG] DATA

  int run() {
    auto abi = load_abi(abi_path);
    if (positionals.empty() || positionals.size() > 2)
      fatal(exit_code::usage, "decode-calldata takes [SIG] DATA; run 'ethcall decode-calldata --help'");
    std::optional<eth::abi_function> fixed;
    if (positionals.size() == 2) {
      try {
        fixed = abi ? abi->function(positionals[0]) : eth::parse_signature(positionals[0]);
      } catch (const eth::abi_error& e) {
        fatal(exit_code::data_error, "{}", e.what());
      }
    } else if (!abi) {
      fatal(exit_code::usage, "decode-calldata needs SIG or --abi FILE to know the function");
    }
    auto decode = [&](const std::string& hex) -> json {
      eth::bytes data = hex_arg(hex, "data");
      if (data.size() < 4) throw eth::abi_error(fmt::format("calldata is {} bytes, shorter than a selector", data.size()));
      const eth::abi_function* fn = fixed ? &*fixed : nullptr;
      std::array<std::uint8_t, 4> sel{data[0], data[1], data[2], data[3]};
      if (!fn) fn = abi->function_by_selector(sel);
      if (!fn) throw eth::abi_error(fmt::format("no function in {} has selector {}", abi_path, hex_of(sel)));
      json values = eth::decode_call(*fn, data);
      return json{{"function", fn->name}, {"signature", fn->signature()}, {"selector", hex_of(sel)},
                  {"args", named_or_array(fn->inputs, std::move(values))}};
    };
    const std::string& data = positionals.back();
    if (data == "-") return run_lines(common, [&](const json& req) { return decode(string_or_field(req, "data")); });
    return run_single(common, [&] { return decode(data); });
  }
};

// ---- decode-error ----

struct decode_error_cmd {
  common_flags common;
  std::string abi_path;
  std::string data;

  int run() {
    auto abi = load_abi(abi_path);
    const eth::abi_file* file = abi ? &*abi : nullptr;
    auto decode = [&](const std::string& hex) { return eth::decode_revert(hex_arg(hex, "data"), file); };
    if (data == "-") return run_lines(common, [&](const json& req) { return decode(string_or_field(req, "data")); });
    return run_single(common, [&] { return decode(data); });
  }
};

// ---- decode-event ----

std::optional<std::uint64_t> quantity(const json& log, const char* name) {
  auto it = log.find(name);
  if (it == log.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (!it->is_string()) throw request_error(fmt::format("field \"{}\" must be a hex quantity", name));
  const std::string& s = it->get_ref<const std::string&>();
  if (!s.starts_with("0x") || s.size() < 3 || s.size() > 18)
    throw request_error(fmt::format("field \"{}\": \"{}\" is not a hex quantity", name, s));
  std::uint64_t v = 0;
  for (char c : std::string_view(s).substr(2)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) throw request_error(fmt::format("field \"{}\": \"{}\" is not a hex quantity", name, s));
    v = v * 16 + static_cast<std::uint64_t>(d);
  }
  return v;
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
    if (abi_path.empty() == event_sig.empty()) fatal(exit_code::usage, "decode-event needs exactly one of --abi FILE or --sig EVENT");
    if (abi_path.empty()) {
      try {
        events.push_back(eth::parse_event(event_sig));
      } catch (const eth::abi_error& e) {
        fatal(exit_code::data_error, "--sig: {}", e.what());
      }
    } else {
      events = load_abi(abi_path)->events();
    }
    if (!event_name.empty()) {
      std::erase_if(events, [&](const eth::abi_event& e) { return e.name != event_name && e.signature() != event_name; });
      if (events.empty()) fatal(exit_code::data_error, "{}: no event named \"{}\"", abi_path.empty() ? "--sig" : abi_path, event_name);
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
    eth::bytes data = hex_arg(string_field(log, "data"), "data");

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
    auto block = quantity(log, "blockNumber");
    rec["block_number"] = block ? json(*block) : json(nullptr);
    rec["block_hash"] = optional_field(log, "blockHash");
    rec["tx_hash"] = optional_field(log, "transactionHash");
    auto index = quantity(log, "logIndex");
    rec["log_index"] = index ? json(*index) : json(nullptr);
    rec["removed"] = log.value("removed", false);
    if (rec["event"].is_null()) {
      rec["topics"] = topics_json;
      rec["data"] = log["data"];
      if (!failure.empty()) rec["error"] = failure;
    }
    return rec;
  }

  int run() {
    load();
    if (log_text == "-") return run_lines(common, [&](const json& req) { return decode(req); }, framing::bare);
    json log = json::parse(log_text, nullptr, false);
    if (log.is_discarded()) fatal(exit_code::data_error, "LOG: {}", json_error(log_text));
    try {
      return print_result(decode(log), common);
    } catch (const request_error& e) {
      fatal(exit_code::data_error, "LOG: {}", e.what());
    } catch (const eth::abi_error& e) {
      fatal(exit_code::data_error, "LOG: {}", e.what());
    }
  }
};

}  // namespace

int command_table::run_selected(const CLI::App& app) const {
  for (const auto& r : rows_) {
    if (!r.sub->parsed()) continue;
    for (const auto& extra : app.remaining()) {
      if (!r.extra_args || extra.starts_with("--"))
        fatal(exit_code::usage, "{}: unexpected argument \"{}\"; run 'ethcall {} --help'", r.sub->get_name(), extra,
              r.sub->get_name());
    }
    return r.run();
  }
  fatal(exit_code::usage, "no subcommand given; run 'ethcall --help'");
}

void add_offline_commands(CLI::App& app, command_table& commands) {
  // The objects live as long as the program: main() returns after running one of them.
  static keccak_cmd keccak;
  static selector_cmd selector;
  static encode_cmd calldata;
  static encode_cmd abi_encode;
  calldata.with_selector = true;
  static decode_cmd abi_decode;
  static decode_calldata_cmd decode_calldata;
  static decode_error_cmd decode_error;
  static decode_event_cmd decode_event;

  auto* k = app.add_subcommand("keccak", "Keccak-256 of text, or of bytes given as 0x-hex");
  add_text_result_flags(k, keccak.common);
  k->add_option("DATA", keccak.data, "Text or 0x-hex bytes; '-' reads JSON Lines requests")->required();
  commands.add(k, [] { return keccak.run(); });

  auto* s = app.add_subcommand("selector", "4-byte selector of a function or error signature");
  add_text_result_flags(s, selector.common);
  s->add_option("SIG", selector.sig, "Signature such as 'transfer(address,uint256)'; '-' reads JSON Lines")->required();
  commands.add(s, [] { return selector.run(); });

  auto add_encode = [&](const char* name, const char* help, encode_cmd& cmd) {
    auto* c = app.add_subcommand(name, help);
    add_text_result_flags(c, cmd.common);
    c->add_option("--abi", cmd.abi_path, "JSON ABI file; SIG is then a function name or signature")->type_name("FILE");
    c->add_flag("--json-args", cmd.json_args, "ARGS is one JSON array holding all arguments");
    c->add_option("SIG", cmd.sig, "Function signature (or name with --abi); '-' reads JSON Lines requests")->required();
    c->footer("ARGS: one argument per parameter (cast style: 1, 0x.., true, [1,2], (a,b)); '-' reads one JSON array per line.");
    // ARGS are what CLI11 leaves over, untouched: an ARGS option would split "[1,2]" in two.
    commands.add(c, [&cmd, &app] {
      cmd.args = app.remaining();
      return cmd.run();
    }, command_table::takes_extra_args);
  };
  add_encode("calldata", "Encode a call: selector and arguments, as 0x-hex", calldata);
  add_encode("abi-encode", "ABI-encode arguments (no selector), as 0x-hex", abi_encode);

  auto* d = app.add_subcommand("abi-decode", "Decode ABI-encoded return data (or, with --input, arguments)");
  add_common_flags(d, abi_decode.common);
  d->add_flag("-i,--input", abi_decode.input, "Decode the signature's input types instead of its outputs");
  d->add_option("SIG", abi_decode.sig, "Signature with outputs, e.g. 'balanceOf(address)(uint256)'; '-' reads JSON Lines")
      ->required();
  d->add_option("DATA", abi_decode.data, "0x-hex data without a selector; '-' reads JSON Lines");
  commands.add(d, [] {
    if (abi_decode.sig != "-" && abi_decode.data.empty())
      fatal(exit_code::usage, "abi-decode takes SIG DATA; run 'ethcall abi-decode --help'");
    return abi_decode.run();
  });

  auto* dc = app.add_subcommand("decode-calldata", "Decode calldata (selector and arguments)");
  add_common_flags(dc, decode_calldata.common);
  dc->add_option("--abi", decode_calldata.abi_path, "JSON ABI file: the function is found by selector")->type_name("FILE");
  dc->add_option("ARGS", decode_calldata.positionals, "[SIG] DATA: signature (or name with --abi) and 0x-hex calldata; DATA '-' reads JSON Lines");
  commands.add(dc, [] { return decode_calldata.run(); });

  auto* de = app.add_subcommand("decode-error", "Decode revert data: Error(string), Panic(uint256), custom errors");
  add_common_flags(de, decode_error.common);
  de->add_option("--abi", decode_error.abi_path, "JSON ABI file with the contract's custom errors")->type_name("FILE");
  de->add_option("DATA", decode_error.data, "0x-hex revert data; '-' reads JSON Lines")->required();
  commands.add(de, [] { return decode_error.run(); });

  auto* ev = app.add_subcommand("decode-event", "Decode event logs (JSON-RPC log objects) into records");
  add_common_flags(ev, decode_event.common);
  ev->add_option("--abi", decode_event.abi_path, "JSON ABI file with the events")->type_name("FILE");
  ev->add_option("--sig", decode_event.event_sig, "One event signature instead of --abi, e.g. 'Transfer(address indexed from,address indexed to,uint256 value)'")
      ->type_name("EVENT");
  ev->add_option("--event", decode_event.event_name, "Only this event (name or signature); needed for anonymous events")
      ->type_name("NAME");
  ev->add_option("LOG", decode_event.log_text, "A log as JSON; '-' (the default) reads one per stdin line")
      ->capture_default_str();
  commands.add(ev, [] { return decode_event.run(); });
}

}  // namespace ethcall
