#include "common.hpp"

#include "commands.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth_cli/errors.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/io/read_file.hpp"
#include "pipekit/io/rejects.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace ethcall {

namespace exit_code = pipekit::exit_code;
namespace io = pipekit::io;
using pipekit::fatal;

namespace {
constexpr std::size_t max_cached_signatures = 4096;
}

std::vector<std::string> command_table::extra_args(const CLI::App& app) const {
  std::vector<std::string> args = app.remaining();
  args.insert(args.end(), trailing_.begin(), trailing_.end());
  return args;
}

int command_table::run_selected(const CLI::App& app) const {
  for (const auto& r : rows_) {
    if (!r.sub->parsed()) continue;
    for (const auto& extra : app.remaining()) {
      if (!r.extra_args || extra.starts_with("--"))
        fatal(exit_code::usage, "{}: unexpected argument \"{}\"; run 'ethcall {} --help'", r.sub->get_name(), extra,
              r.sub->get_name());
    }
    if (!r.extra_args && !trailing_.empty())
      fatal(exit_code::usage, "{}: unexpected argument \"{}\"; run 'ethcall {} --help'", r.sub->get_name(),
            trailing_.front(), r.sub->get_name());
    try {
      return r.run();
    } catch (const eth::abi_error& e) {
      fatal(exit_code::data_error, "{}", e.what());
    } catch (const eth::rpc_error& e) {
      fatal(exit_code::failure, "JSON-RPC error {}: {}", e.code, e.what());
    } catch (const eth::error& e) {
      pipekit::eth_cli::fatal(e);
    }
  }
  fatal(exit_code::usage, "no command given; run 'ethcall --help'");
}

void add_common_flags(CLI::App* sub, common_flags& f) {
  sub->add_option("--rejects", f.rejects, "With '-': also write rejected lines as JSON records to FILE ('-': stdout)")
      ->type_name("FILE");
}

void add_text_result_flags(CLI::App* sub, common_flags& f) {
  add_common_flags(sub, f);
  f.bare_text = true;
  sub->add_flag_callback("--json", [&f] { f.bare_text = false; }, "Print the result as a JSON string, not bare text");
}

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

std::string hex_of(std::span<const std::uint8_t> bytes) { return eth::to_hex(bytes); }

std::optional<eth::abi_file> load_abi(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::string text = read_input_file(path, "--abi", max_abi_file);
  auto doc = pipekit::json::parse(text);
  if (!doc.ok()) fatal(exit_code::data_error, "--abi {}: {}", path, doc.error);
  try {
    return eth::abi_file::parse(doc.value);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::data_error, "--abi {}: {}", path, e.what());
  }
}

std::string read_input_file(const std::string& path, std::string_view flag, std::size_t max_bytes) {
  try {
    return io::read_file(path, max_bytes);
  } catch (const io::file_error& e) {
    fatal(e.code(), "{} {}: {}", flag, path, e.what());
  }
}

const eth::abi_function& signature_cache::get(const std::string& sig) {
  auto it = map_.find(sig);
  if (it != map_.end()) return it->second;
  if (map_.size() >= max_cached_signatures) {
    map_.clear();
    ++generation_;
  }
  return map_.emplace(sig, eth::parse_signature(sig)).first->second;
}

json cli_args(const std::vector<eth::abi_param>& params, const std::vector<std::string>& texts, bool json_args) {
  if (json_args) {
    if (texts.size() != 1) throw eth::abi_error("--json-args: give the arguments as one JSON array");
    auto a = pipekit::json::parse(texts[0]);
    if (!a.ok()) throw eth::abi_error(fmt::format("--json-args: {}", a.error));
    return std::move(a.value);
  }
  if (texts.size() != params.size())
    throw eth::abi_error(fmt::format("arguments: expected {} for {}, got {}", params.size(),
                                     params.size() == 1 ? "its parameter" : "its parameters", texts.size()));
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

int print_result(const json& result, const common_flags& f) {
  io::line_writer out(STDOUT_FILENO);
  if (result.is_string() && f.bare_text) out.write_line(result.get_ref<const std::string&>());
  else out.write_line(result.dump());
  out.flush();
  return exit_code::ok;
}

int run_lines(const common_flags& f, const std::function<json(const json&)>& handle, framing frame) {
  io::line_reader in("-");
  io::line_writer out(STDOUT_FILENO);
  out.batch_until_flush();
  in.on_refill([&] { out.flush(); });
  io::rejects rejects = f.rejects.empty() ? io::rejects() : f.rejects == "-" ? io::rejects(out) : io::rejects(f.rejects);
  std::uint64_t blank = 0;
  while (auto l = in.next()) {
    if (l->too_long) {
      if (!rejects.add(in.source(), l->number, "line_too_long",
                       fmt::format("line longer than {} bytes", io::default_max_line), "")) break;
      continue;
    }
    if (l->text.find_first_not_of(" \t") == std::string_view::npos) {
      ++blank;
      pipekit::log::debug("{}:{}: empty line skipped", in.source(), l->number);
      continue;
    }
    auto parsed = pipekit::json::parse(l->text);
    if (!parsed.ok()) {
      if (!rejects.add(in.source(), l->number, "invalid_json", parsed.error, l->text)) break;
      continue;
    }
    const json& req = parsed.value;
    std::string_view code;
    std::string message;
    try {
      json result = handle(req);
      if (frame == framing::envelope) {
        json id = req.is_object() && req.contains("id") ? req["id"] : json(l->number);
        result = {{"id", std::move(id)}, {"result", std::move(result)}};
      }
      if (!out.write_line(result.dump())) break;  // the reader has gone: stop quietly
      continue;
    } catch (const request_error& e) {
      code = "bad_request", message = e.what();
    } catch (const eth::abi_error& e) {
      code = "abi_error", message = e.what();
    } catch (const nlohmann::json::exception& e) {
      code = "bad_request", message = e.what();
    }
    if (!rejects.add(in.source(), l->number, code, message, l->text)) break;
  }
  out.flush();
  rejects.flush();
  if (blank > 0) pipekit::log::debug("{} empty line(s) skipped", blank);
  return rejects.count() > 0 ? exit_code::data_error : exit_code::ok;
}

std::string block_param(const std::string& tag, std::string_view flag) {
  if (tag == "latest" || tag == "earliest" || tag == "pending" || tag == "safe" || tag == "finalized") return tag;
  if (tag.starts_with("0x")) return tag;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), n);
  if (ec != std::errc() || end != tag.data() + tag.size() || tag.empty())
    fatal(exit_code::usage, "{}: \"{}\" is not a block number or tag (latest, earliest, pending, safe, finalized)", flag, tag);
  return fmt::format("0x{:x}", n);
}

}  // namespace ethcall
