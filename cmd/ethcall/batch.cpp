// ethcall batch: JSON Lines of calls in, JSON Lines of results out, in input order.
//
// Three roles: this thread reads lines and hands them out in chunks of --batch-size; each of
// --concurrency workers (one connection each) turns a chunk into one JSON-RPC batch of
// eth_call and its answers into output lines; a writer thread writes the chunks back in input
// order. At most 2 x concurrency chunks are in flight, so memory stays bounded on any input.
#include <sys/mman.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/eth/batch_pipeline.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/io/read_file.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
namespace log = pipekit::log;
using pipekit::fatal;

// Error codes of lines that never reached the node (JSON-RPC's own meanings), and of results
// that came back but could not be decoded.
constexpr int code_invalid_json = -32700;
constexpr int code_invalid_request = -32602;
constexpr int code_undecodable = -32603;

constexpr unsigned max_concurrency = 256;  // connections to one node; more only queue at its end
constexpr std::size_t thread_headroom = 96u << 20;

struct batch_flags {
  rpc_flags rpc;
  std::string input = "-";
  std::string abi_path;
  std::string block = "latest";
  std::size_t batch_size = 100;
  unsigned concurrency = 2;
  bool raw = false;
};

batch_flags& flags() {
  static batch_flags f;
  return f;
}

// What a worker knows about one line on its way to the node.
struct call_item {
  nlohmann::json id;
  const eth::abi_function* fn = nullptr;
  const eth::abi_file* abi = nullptr;  // for custom errors
  std::optional<nlohmann::json> error;  // set: the line never goes to the node
};

class worker_state {
 public:
  explicit worker_state(const std::shared_ptr<const eth::abi_file>& default_abi) : default_abi_(default_abi) {}

  call_item prepare(std::uint64_t number, std::string_view text, bool too_long, std::vector<eth::rpc_request>& requests) {
    call_item item;
    item.id = number;
    if (too_long) {
      item.error = error(code_invalid_request, fmt::format("line longer than {} bytes", pipekit::io::default_max_line));
      return item;
    }
    auto parsed = pipekit::json::parse(text);
    if (!parsed.ok()) {
      item.error = error(code_invalid_json, parsed.error);
      return item;
    }
    const json& req = parsed.value;
    try {
      if (!req.is_object()) throw request_error("expected a JSON object with \"to\" and \"sig\" or \"function\"");
      if (auto id = req.find("id"); id != req.end()) item.id = *id;
      const std::string& to = string_field(req, "to");
      const json& args = req.contains("args") ? args_of(req) : empty_args_;
      if (req.contains("sig")) {
        item.fn = &sigs_.get(string_field(req, "sig"));
        if (req.contains("abi")) item.abi = &abi_of(req["abi"]);
        else if (default_abi_) item.abi = default_abi_.get();
      } else {
        item.abi = req.contains("abi") ? &abi_of(req["abi"]) : default_abi_.get();
        if (item.abi == nullptr) throw request_error("give \"sig\", or \"function\" with \"abi\" (or --abi)");
        const std::string& name = string_field(req, "function");
        item.fn = &item.abi->function(name, args.is_array() ? std::optional<std::size_t>(args.size()) : std::nullopt);
      }
      json tx = {{"to", to}, {"data", hex_of(eth::encode_call(selector_of(*item.fn), item.fn->inputs, args))}};
      if (auto f = req.find("from"); f != req.end()) tx["from"] = *f;
      if (auto v = req.find("value"); v != req.end()) tx["value"] = *v;
      std::string block = req.contains("block") ? block_tag(req["block"]) : default_block_;
      requests.push_back({"eth_call", json::array({std::move(tx), std::move(block)})});
    } catch (const request_error& e) {
      item.error = error(code_invalid_request, e.what());
    } catch (const eth::abi_error& e) {
      item.error = error(code_invalid_request, e.what());
    } catch (const nlohmann::json::exception& e) {
      item.error = error(code_invalid_request, e.what());
    }
    return item;
  }

  // The output line for a call the node answered (its result is hex data: rpc_client checked it).
  static json answer(const call_item& item, eth::rpc_reply& reply, bool raw) {
    if (!reply.ok()) {
      json e = {{"code", reply.error->code}, {"message", reply.error->what()}};
      if (reply.error->data.is_string()) {
        try {
          e["revert"] = eth::decode_revert(eth::from_hex(reply.error->data.get_ref<const std::string&>()), item.abi);
        } catch (const eth::abi_error&) {
          e["data"] = reply.error->data;
        }
      } else if (!reply.error->data.is_null()) {
        e["data"] = reply.error->data;
      }
      return {{"id", item.id}, {"error", std::move(e)}};
    }
    const std::string& hex = reply.result.get_ref<const std::string&>();
    if (raw || item.fn->outputs.empty()) return {{"id", item.id}, {"result", hex}};
    try {
      return {{"id", item.id}, {"result", eth::shape_result(item.fn->outputs, eth::decode(item.fn->outputs, eth::from_hex(hex)))}};
    } catch (const eth::abi_error& e) {
      return {{"id", item.id}, {"error", error(code_undecodable, fmt::format("cannot decode the result {}: {}", hex, e.what()))}};
    }
  }

  static json error(int code, std::string message) { return {{"code", code}, {"message", std::move(message)}}; }

 private:
  std::string block_tag(const json& b) {
    if (b.is_number_unsigned()) return fmt::format("0x{:x}", b.get<std::uint64_t>());
    if (!b.is_string()) throw request_error("field \"block\" must be a block number or tag");
    const std::string& t = b.get_ref<const std::string&>();
    if (t == "latest" || t == "earliest" || t == "pending" || t == "safe" || t == "finalized" || t.starts_with("0x")) return t;
    throw request_error(fmt::format("field \"block\": \"{}\" is not a block number or tag", t));
  }

  // Keyed by address: functions live as long as the caches holding them, and when one of those
  // drops entries (an address may then be reused) this cache is dropped too.
  const std::array<std::uint8_t, 4>& selector_of(const eth::abi_function& fn) {
    if (sigs_.generation() != selectors_generation_) {
      selectors_.clear();
      selectors_generation_ = sigs_.generation();
    }
    auto it = selectors_.find(&fn);
    if (it == selectors_.end()) {
      it = selectors_.emplace(&fn, fn.selector()).first;
    }
    return it->second;
  }

  // "abi": a file path (cached; bad files are line errors, not fatal) or an inline ABI array.
  const eth::abi_file& abi_of(const json& a) {
    std::string key = a.is_string() ? a.get<std::string>() : a.dump();
    auto it = abis_.find(key);
    if (it == abis_.end()) {
      std::string error;
      std::optional<eth::abi_file> abi;
      try {
        if (a.is_string()) {
          // The file's content never goes into the answer (whoever writes the lines may not
          // read the files): errors say what is wrong and where, not what was there.
          std::string text;
          try {
            text = pipekit::io::read_file(key, max_abi_file);
          } catch (const pipekit::io::file_error& e) {
            throw request_error(fmt::format("field \"abi\": {}: {}", key, e.what()));
          }
          auto doc = pipekit::json::parse(text);
          if (!doc.ok()) throw request_error(fmt::format("field \"abi\": {}: not a JSON ABI file", key));
          try {
            abi = eth::abi_file::parse(doc.value);
          } catch (const eth::abi_error&) {
            throw request_error(fmt::format("field \"abi\": {}: not a valid JSON ABI file", key));
          }
        } else {
          abi = eth::abi_file::parse(a);
        }
      } catch (const eth::abi_error& e) {
        error = fmt::format("field \"abi\": {}", e.what());
      } catch (const request_error& e) {
        error = e.what();
      }
      if (abis_.size() > 64) {
        abis_.clear();
        selectors_.clear();
      }
      it = abis_.emplace(key, abi ? cached_abi{std::make_shared<eth::abi_file>(std::move(*abi)), {}} : cached_abi{nullptr, error}).first;
    }
    if (!it->second.abi) throw request_error(it->second.error);
    return *it->second.abi;
  }

  struct cached_abi {
    std::shared_ptr<eth::abi_file> abi;
    std::string error;
  };
  std::shared_ptr<const eth::abi_file> default_abi_;
  signature_cache sigs_;
  std::unordered_map<const eth::abi_function*, std::array<std::uint8_t, 4>> selectors_;
  std::uint64_t selectors_generation_ = 0;
  std::unordered_map<std::string, cached_abi> abis_;
  std::string default_block_ = block_param(flags().block);
  const json empty_args_ = json::array();
};

void work(eth::batch_pipeline& p, const std::shared_ptr<const eth::abi_file>& default_abi, const std::string& source) {
  const auto& f = flags();
  eth::rpc_client client(f.rpc.options());
  worker_state state(default_abi);
  std::vector<call_item> items;
  std::vector<eth::rpc_request> requests;
  while (auto c = p.take()) {
    items.clear();
    requests.clear();
    eth::batch_result out;
    for (std::size_t i = 0; i < c->lines.size(); ++i)
      items.push_back(state.prepare(c->lines[i].first, c->lines[i].second, c->too_long[i], requests));
    auto replies = client.batch(requests);
    std::size_t next_reply = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      json line;
      if (items[i].error) {
        ++out.invalid;
        log::error("{}:{}: {}", source, c->lines[i].first, (*items[i].error)["message"].get<std::string>());
        line = {{"id", items[i].id}, {"error", std::move(*items[i].error)}};
      } else {
        line = worker_state::answer(items[i], replies[next_reply++], f.raw);
        if (line.contains("error")) ++out.failed;
      }
      // "id" first, as a reader scanning the stream expects (json objects sort their keys).
      out.text += "{\"id\":";
      out.text += line["id"].dump();
      bool ok = line.contains("result");
      out.text += ok ? ",\"result\":" : ",\"error\":";
      out.text += line[ok ? "result" : "error"].dump();
      out.text += "}\n";
    }
    p.finish(c->seq, std::move(out));
  }
}

// A range of address space taken (not touched, so no memory is used) and given back.
class address_space_reserve {
 public:
  explicit address_space_reserve(std::size_t bytes) : size_(bytes) {
    p_ = ::mmap(nullptr, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  ~address_space_reserve() { release(); }
  address_space_reserve(const address_space_reserve&) = delete;
  address_space_reserve& operator=(const address_space_reserve&) = delete;
  void release() {
    if (p_ != MAP_FAILED) ::munmap(p_, size_);
    p_ = MAP_FAILED;
  }

 private:
  std::size_t size_;
  void* p_ = MAP_FAILED;
};

int batch_cmd() {
  const auto& f = flags();
  if (f.batch_size == 0) fatal(exit_code::usage, "--batch-size must be at least 1");
  (void)block_param(f.block);  // a bad --block is a usage error before any work
  std::shared_ptr<const eth::abi_file> default_abi;
  if (auto abi = load_abi(f.abi_path)) default_abi = std::make_shared<const eth::abi_file>(std::move(*abi));

  pipekit::io::line_reader in(f.input);
  eth::batch_pipeline p(2 * static_cast<std::size_t>(f.concurrency));
  std::uint64_t invalid = 0, failed = 0;

  // Every thread started is joined, on every way out: the pipeline is stopped first when this
  // scope is left by an exception, so no thread waits for work that will not come.
  std::vector<std::thread> threads;
  struct joiner {
    eth::batch_pipeline& p;
    std::vector<std::thread>& threads;
    ~joiner() {
      if (std::uncaught_exceptions() > 0) p.stop();
      p.close_input();
      for (auto& t : threads) t.join();
    }
  } join_all{p, threads};

  // Threads may not all be granted (ulimit -v, -u): the writer is needed, then one worker at
  // least; fewer workers than asked only slow the run down.
  std::string thread_error;
  auto start = [&](std::function<void()> body) {
    try {
      threads.emplace_back([&p, body = std::move(body)] {
        try {
          body();
        } catch (...) {
          p.stop(std::current_exception());
        }
      });
      return true;
    } catch (const std::system_error& e) {
      thread_error = e.code().message();
    } catch (const std::bad_alloc&) {
      thread_error = "out of memory";
    }
    return false;
  };
  // Address space held back while threads start: under a memory limit (ulimit -v) thread
  // creation then stops while the workers still have room to work, instead of leaving them
  // none (every allocation failing in every thread).
  address_space_reserve headroom(thread_headroom);
  if (!start([&] {
        pipekit::io::line_writer out(STDOUT_FILENO);
        out.batch_until_flush();
        while (auto r = p.next_in_order()) {
          invalid += r->invalid;
          failed += r->failed;
          std::string_view text = r->text;
          if (!text.empty()) text.remove_suffix(1);
          if (!out.write_line(text) || (!p.ready_in_order() && !out.flush())) {
            p.stop();  // the reader has gone: stop quietly
            return;
          }
        }
        out.flush();
      }))
    fatal(exit_code::software, "cannot start a thread: {}", thread_error);
  unsigned workers = 0;
  while (workers < f.concurrency && start([&] { work(p, default_abi, in.source()); })) ++workers;
  headroom.release();
  if (workers == 0) fatal(exit_code::software, "cannot start a worker thread: {}", thread_error);
  if (workers < f.concurrency)
    log::warn("--concurrency {}: only {} worker thread(s) could be started ({}); going on with them", f.concurrency,
              workers, thread_error);

  eth::batch_chunk c;
  std::uint64_t seq = 0;
  auto dispatch = [&] {
    if (c.lines.empty()) return true;
    c.seq = seq++;
    bool ok = p.push(std::move(c));
    c = eth::batch_chunk();
    return ok;
  };
  // A line typed at a terminal (or a slow producer) is sent at once, not held for a full batch.
  in.on_refill([&] { dispatch(); });
  try {
    while (auto l = in.next()) {
      if (!l->too_long && l->text.find_first_not_of(" \t") == std::string_view::npos) {
        log::debug("{}:{}: empty line skipped", in.source(), l->number);
        continue;
      }
      c.lines.emplace_back(l->number, std::string(l->text));
      c.too_long.push_back(l->too_long);
      if (c.lines.size() >= f.batch_size && !dispatch()) break;
    }
    dispatch();
  } catch (...) {
    p.stop(std::current_exception());
  }
  p.close_input();
  for (auto& t : threads) t.join();
  threads.clear();
  if (auto e = p.failure()) std::rethrow_exception(e);
  if (invalid > 0) {
    log::error("{} line(s) were not valid calls; {} call(s) failed", invalid, failed);
    return exit_code::data_error;
  }
  if (failed > 0) {
    log::error("{} call(s) failed", failed);
    return exit_code::failure;
  }
  return exit_code::ok;
}

}  // namespace

void add_batch_command(CLI::App& app, command_table& commands) {
  auto& f = flags();
  auto* s = app.add_subcommand("batch", "Many eth_calls from JSON Lines on stdin, as JSON-RPC batches; results in input order");
  add_rpc_flags(s, f.rpc);
  s->add_option("--input,-i", f.input, "Read calls from FILE ('-': stdin)")->type_name("FILE")->capture_default_str();
  s->add_option("--abi", f.abi_path, "JSON ABI file for lines that give \"function\" without \"abi\", and for custom errors")
      ->type_name("FILE");
  s->add_option("--block,-B", f.block, "Block number or tag for lines without \"block\"")->capture_default_str();
  s->add_option("--batch-size", f.batch_size, "Calls per JSON-RPC batch")->type_name("N")->capture_default_str();
  s->add_option("--concurrency", f.concurrency, "Batches in flight, each on a connection of its own (at most 256)")
      ->type_name("N")->check(CLI::Range(1u, max_concurrency))->capture_default_str();
  s->add_flag("--raw", f.raw, "Results as the returned hex, undecoded");
  s->footer(
      "Each line: {\"id\":..,\"to\":\"0x..\",\"sig\":\"f(uint256)(bool)\",\"args\":[..]}, or \"function\" with \"abi\" (a file or\n"
      "an inline ABI); optional \"block\", \"from\", \"value\". Out: {\"id\":..,\"result\":..} or\n"
      "{\"id\":..,\"error\":{\"code\":..,\"message\":..,\"revert\":{..}}}; the id defaults to the line number.\n"
      "Exit 65 when a line was not a valid call, 1 when a call failed, after every line was answered.");
  commands.add(s, batch_cmd);
}

}  // namespace ethcall
