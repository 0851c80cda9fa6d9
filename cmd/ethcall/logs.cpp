// ethcall logs: decoded event logs as JSON Lines (design section 7), over a block range or
// followed as new blocks come (--follow), resumable from a checkpoint file, reorgs undone with
// "removed":true records.
//
// One loop serves every transport: reconcile the blocks already emitted with the node's chain
// (undo orphaned ones), then fetch the logs of the new blocks with eth_getLogs in chunks,
// checking each chunk's headers against the blocks before it. Over ws/ipc a newHeads
// subscription wakes the loop; over http it polls. The checkpoint holds the hashes of the last
// blocks, so a restart also notices a reorg that happened while it was down.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/event_log.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
namespace log = pipekit::log;
using pipekit::fatal;

constexpr std::uint64_t default_chunk_size = 2000;
constexpr std::size_t max_recent_blocks = 64;  // reorgs deeper than this cannot be undone
constexpr int max_reorg_retries = 16;          // chunks refetched in a row because the chain moved
constexpr std::size_t max_checkpoint_file = 1u << 20;
constexpr int checkpoint_version = 1;

// The reader of stdout has gone: stop quietly, acknowledge (checkpoint) nothing more.
struct reader_gone {};

std::uint64_t parse_quantity(const json& q, std::string_view what) {
  if (q.is_number_unsigned()) return q.get<std::uint64_t>();
  if (q.is_string()) {
    const std::string& s = q.get_ref<const std::string&>();
    std::uint64_t v = 0;
    if (s.starts_with("0x") && s.size() > 2) {
      auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
      if (ec == std::errc() && end == s.data() + s.size()) return v;
    }
  }
  fatal(exit_code::unavailable, "the node sent {} as {}, not a quantity", q.dump(), what);
}

std::string quantity(std::uint64_t n) { return fmt::format("0x{:x}", n); }

// The node refuses an eth_getLogs range as too long or its answer as too big. Each node says it
// its own way: geth/infura "query returned more than 10000 results", alchemy "Log response size
// exceeded", "block range is too wide", "exceed maximum block range", -32005 "limit exceeded".
bool range_too_large(const eth::rpc_error& e) {
  if (e.code == -32005) return true;
  std::string m = e.what();
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view word : {"range", "too many", "too large", "too big", "more than", "exceed", "limit"})
    if (m.find(word) != std::string::npos) return true;
  return false;
}

// A block already emitted: its hash, and its records (kept to undo it after a reorg; unknown
// for blocks that came from the checkpoint file).
struct emitted_block {
  std::uint64_t number = 0;
  std::string hash;
  std::optional<std::vector<json>> records;
};

struct header {
  std::uint64_t number = 0;
  std::string hash, parent;
};

// --checkpoint FILE: {"version":1,"block":N,"hash":"0x..","recent":["0x..",...]}, recent holding the
// hashes of blocks N-len+1..N (the last is "hash"). Written atomically: temp file, fsync, rename.
class checkpoint_file {
 public:
  explicit checkpoint_file(std::string path) : path_(std::move(path)) {}
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // nullopt when the file does not exist yet. 66 unreadable, 65 malformed.
  std::optional<std::pair<std::uint64_t, std::deque<emitted_block>>> load() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
    std::string text = read_input_file(path_, "--checkpoint", max_checkpoint_file);
    auto doc = pipekit::json::parse(text);
    if (!doc.ok()) fatal(exit_code::data_error, "--checkpoint {}: not JSON: {}", path_, doc.error);
    const json& j = doc.value;
    auto bad = [&](std::string_view why) { fatal(exit_code::data_error, "--checkpoint {}: {}", path_, why); };
    if (!j.is_object()) bad("not a checkpoint object");
    // A version this program does not know may mean anything: refuse it rather than resume wrong.
    if (j.value("version", json()) != json(checkpoint_version))
      bad(fmt::format("version {} is not {}, the one this ethcall writes", j.value("version", json()).dump().substr(0, 40),
                      checkpoint_version));
    if (!j.contains("block") || !j["block"].is_number_unsigned()) bad("\"block\" must be a block number");
    const std::uint64_t block = j["block"].get<std::uint64_t>();
    std::deque<emitted_block> recent;
    const json recent_json = j.value("recent", json::array());
    if (!recent_json.is_array() || recent_json.size() > block + 1) bad("\"recent\" must be an array of block hashes");
    std::uint64_t n = block + 1 - recent_json.size();
    for (const auto& h : recent_json) {
      if (!h.is_string() || !is_hash(h.get_ref<const std::string&>())) bad("\"recent\" must hold 32-byte 0x-hex hashes");
      recent.push_back({n++, h.get<std::string>(), std::nullopt});
    }
    const json hash = j.value("hash", json());
    if (!recent.empty() && hash != recent.back().hash) bad("\"hash\" is not the last of \"recent\"");
    return std::make_pair(block, std::move(recent));
  }

  // 74 when it cannot be written.
  void save(std::uint64_t block, const std::deque<emitted_block>& recent) const {
    json hashes = json::array();
    for (const auto& b : recent) hashes.push_back(b.hash);
    json doc = {{"version", checkpoint_version}, {"block", block}, {"hash", recent.empty() ? json() : json(recent.back().hash)},
                {"recent", std::move(hashes)}};
    std::string error = pipekit::io::write_file_atomic(path_, doc.dump() + "\n");
    if (!error.empty()) fatal(exit_code::io_error, "--checkpoint {}: {}", path_, error);
  }

  static bool is_hash(std::string_view h) {
    return h.size() == 66 && h.starts_with("0x") && pipekit::eth::find_non_hex(h.substr(2)) == std::string_view::npos;
  }

 private:
  std::string path_;
};

struct logs_options {
  rpc_flags rpc;
  std::vector<std::string> addresses;
  std::string abi_path, event;
  std::vector<std::string> topics;
  std::string from_block, to_block = "latest";
  std::uint64_t chunk_size = default_chunk_size;
  bool follow = false;
  std::string poll_interval = "2s";
  std::string checkpoint;
  std::uint64_t confirmations = 0;
};

class follower {
 public:
  follower(const logs_options& o, eth::log_decoder matcher, json filter)
      : o_(o), matcher_(std::move(matcher)), filter_(std::move(filter)), client_(o.rpc.connect()),
        checkpoint_(o.checkpoint), out_(STDOUT_FILENO), chunk_(o.chunk_size) {
    pipekit::util::on_stop_signals(io_, [this](int signo) {
      log::info("signal {}: finishing the current blocks", signo);
      stop_ = true;
    });
    try {
      poll_ = std::chrono::duration_cast<std::chrono::milliseconds>(pipekit::util::parse_duration(o.poll_interval));
    } catch (const std::invalid_argument& e) {
      fatal(exit_code::usage, "--poll-interval: {}", e.what());
    }
    if (poll_.count() <= 0) fatal(exit_code::usage, "--poll-interval: must be more than 0");
  }

  int run() {
    try {
      start();
      if (o_.follow && client_.supports_subscriptions()) client_.subscribe(json::array({"newHeads"}));
      do {
        if (!pass()) break;
      } while (o_.follow && wait_for_blocks());
      out_.flush();
    } catch (const reader_gone&) {
      log::debug("stdout closed: stopping");
    }
    return exit_code::ok;
  }

 private:
  bool stopping() {
    io_.poll();
    return stop_;
  }

  void start() {
    std::optional<std::uint64_t> resumed;
    if (checkpoint_.enabled()) {
      if (auto cp = checkpoint_.load()) {
        resumed = cp->first;
        recent_ = std::move(cp->second);
        log::info("{}: resuming after block {}", checkpoint_.path(), *resumed);
      }
    }
    next_ = resumed ? *resumed + 1 : resolve_block(o_.from_block.empty() ? "latest" : o_.from_block, "--from-block");
    if (!o_.follow) last_wanted_ = resolve_block(o_.to_block, "--to-block");
    if (!resumed && next_ > 0) anchor();
  }

  // A fresh start remembers the block before the first one (nothing emitted from it), so a
  // reorg of the first block is told apart from a deeper one.
  void anchor() {
    auto h = headers_of({next_ - 1});
    if (h) recent_.push_back({next_ - 1, h->front().hash, std::vector<json>{}});
  }

  std::uint64_t resolve_block(const std::string& tag, std::string_view flag) {
    const std::string p = block_param(tag, flag);
    if (p.starts_with("0x")) return parse_quantity(json(p), flag);
    if (p == "earliest") return 0;
    if (p == "latest") return parse_quantity(client_.call("eth_blockNumber", json::array()), "eth_blockNumber");
    json b = client_.call("eth_getBlockByNumber", json::array({p, false}));
    if (!b.is_object()) fatal(exit_code::unavailable, "{}: no \"{}\" block", client_.url(), p);
    return parse_quantity(b.value("number", json()), "a block number");
  }

  // One round: undo what a reorg orphaned, then every new block up to the target. False once
  // stopped (signal) or, without --follow, done.
  bool pass() {
    for (int attempt = 0; attempt < max_reorg_retries; ++attempt) {
      reconcile();
      std::uint64_t head = parse_quantity(client_.call("eth_blockNumber", json::array()), "eth_blockNumber");
      if (head < o_.confirmations) return !stopping();
      std::uint64_t target = head - o_.confirmations;
      if (last_wanted_) target = std::min(target, *last_wanted_);
      if (fetch_range(target)) return o_.follow && !stopping();
      if (stop_) return false;
      log::info("the chain changed while fetching; reconciling");
    }
    fatal(exit_code::temp_fail, "{}: the chain kept changing under {} fetches in a row; try again", client_.url(),
          max_reorg_retries);
  }

  // Blocks next_..target in chunks. False when a chunk did not fit the blocks before it (a reorg
  // in flight) or a signal came.
  bool fetch_range(std::uint64_t target) {
    while (next_ <= target) {
      if (stopping()) return false;
      const std::uint64_t a = next_, b = std::min(target, a + chunk_ - 1);
      std::optional<json> logs = get_logs(a, b);
      if (!logs) continue;  // chunk halved
      auto headers = fetch_headers(a, b);
      if (!headers || !consistent(*headers, *logs, a, b)) return false;
      commit(*headers, std::move(*logs), b);
    }
    return true;
  }

  std::optional<json> get_logs(std::uint64_t a, std::uint64_t b) {
    json f = filter_;
    f["fromBlock"] = quantity(a);
    f["toBlock"] = quantity(b);
    try {
      json logs = client_.call("eth_getLogs", json::array({std::move(f)}));
      if (!logs.is_array()) fatal(exit_code::unavailable, "{}: eth_getLogs returned {}", client_.url(), logs.dump());
      return logs;
    } catch (const eth::rpc_error& e) {
      if (!range_too_large(e) || a == b) throw;
      chunk_ = std::max<std::uint64_t>(1, (b - a + 1) / 2);
      log::info("{}: blocks {}..{}: {}; chunks of {} blocks from now on", client_.url(), a, b, e.what(), chunk_);
      return std::nullopt;
    }
  }

  // The headers a chunk needs: its first block (does it follow ours?) and its last
  // max_recent_blocks (kept to notice later reorgs). nullopt when one no longer exists.
  std::optional<std::vector<header>> fetch_headers(std::uint64_t a, std::uint64_t b) {
    std::vector<std::uint64_t> numbers;
    const std::uint64_t tail = b - a + 1 > max_recent_blocks ? b - max_recent_blocks + 1 : a;
    if (tail != a) numbers.push_back(a);
    for (std::uint64_t n = tail; n <= b; ++n) numbers.push_back(n);
    return headers_of(numbers);
  }

  std::optional<std::vector<header>> headers_of(const std::vector<std::uint64_t>& numbers) {
    std::vector<eth::rpc_request> reqs;
    for (auto n : numbers) reqs.push_back({"eth_getBlockByNumber", json::array({quantity(n), false})});
    auto replies = client_.batch(reqs);
    std::vector<header> out;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (!replies[i].ok()) throw *replies[i].error;
      const json& blk = replies[i].result;
      if (!blk.is_object()) return std::nullopt;  // shorter chain now
      header h{numbers[i], blk.value("hash", ""), blk.value("parentHash", "")};
      if (parse_quantity(blk.value("number", json()), "a block number") != numbers[i])
        fatal(exit_code::unavailable, "{}: asked for block {}, got {}", client_.url(), numbers[i], blk.value("number", json()).dump());
      out.push_back(std::move(h));
    }
    return out;
  }

  bool consistent(const std::vector<header>& headers, const json& logs, std::uint64_t a, std::uint64_t b) const {
    if (!recent_.empty() && recent_.back().number + 1 == a && headers.front().parent != recent_.back().hash) return false;
    for (std::size_t i = 1; i < headers.size(); ++i)
      if (headers[i].number == headers[i - 1].number + 1 && headers[i].parent != headers[i - 1].hash) return false;
    for (const auto& l : logs) {
      if (!l.is_object()) return false;
      const std::uint64_t n = parse_quantity(l.value("blockNumber", json()), "a log's blockNumber");
      if (n < a || n > b || l.value("removed", false)) return false;
      auto h = std::find_if(headers.begin(), headers.end(), [n](const header& x) { return x.number == n; });
      if (h != headers.end() && l.value("blockHash", "") != h->hash) return false;
    }
    return true;
  }

  // Writes the chunk's records, flushes, then records the blocks and the checkpoint.
  void commit(const std::vector<header>& headers, json logs, std::uint64_t b) {
    std::vector<std::pair<std::uint64_t, json>> records;
    for (auto& l : logs) {
      json rec = matcher_.record(l);
      if (!wanted(rec)) continue;
      records.emplace_back(parse_quantity(l.value("blockNumber", json()), "blockNumber"), std::move(rec));
    }
    std::stable_sort(records.begin(), records.end(), [](const auto& x, const auto& y) {
      return std::tie(x.first, x.second["log_index"]) < std::tie(y.first, y.second["log_index"]);
    });
    for (const auto& [n, rec] : records) write(rec);
    if (!out_.flush()) throw reader_gone{};

    for (const auto& h : headers) {
      if (!recent_.empty() && recent_.back().number + 1 != h.number) recent_.clear();  // keep them consecutive
      emitted_block e{h.number, h.hash, std::vector<json>{}};
      for (const auto& [n, rec] : records)
        if (n == h.number) e.records->push_back(rec);
      recent_.push_back(std::move(e));
    }
    while (recent_.size() > max_recent_blocks) recent_.pop_front();
    next_ = b + 1;
    save();
  }

  // With --event, only its logs: an anonymous event has no topic 0 to filter on, so the node
  // also sends other logs, which do not decode as it.
  bool wanted(const json& rec) const {
    if (matcher_.named_events().empty() || !rec["event"].is_null()) return true;
    log::debug("block {} log {}: not a {} event; skipped", rec["block_number"].dump(), rec["log_index"].dump(), o_.event);
    return false;
  }

  void write(const json& rec) {
    if (!out_.write_line(rec.dump(-1, ' ', false, json::error_handler_t::replace))) throw reader_gone{};
  }

  void save() {
    if (checkpoint_.enabled()) checkpoint_.save(next_ - 1, recent_);
  }

  // Compares the blocks we emitted with the node's chain; orphaned ones come out again with
  // "removed":true (in the order they were emitted), and the next fetch starts after the fork.
  void reconcile() {
    if (recent_.empty()) return;
    std::vector<std::uint64_t> numbers;
    for (const auto& b : recent_) numbers.push_back(b.number);
    std::vector<std::string> canonical;
    {
      std::vector<eth::rpc_request> reqs;
      for (auto n : numbers) reqs.push_back({"eth_getBlockByNumber", json::array({quantity(n), false})});
      for (auto& r : client_.batch(reqs)) {
        if (!r.ok()) throw *r.error;
        canonical.push_back(r.result.is_object() ? r.result.value("hash", "") : "");
      }
    }
    std::size_t keep = recent_.size();
    while (keep > 0 && canonical[keep - 1] != recent_[keep - 1].hash) --keep;
    if (keep == recent_.size()) return;
    const std::uint64_t fork = recent_.front().number + keep;  // first orphaned block
    log::warn("reorg: blocks from {} on were replaced; emitting their logs again with \"removed\":true", fork);
    if (keep == 0) log::warn("reorg deeper than the {} blocks remembered; blocks before {} are not checked", recent_.size(), fork);
    for (std::size_t i = keep; i < recent_.size(); ++i) {
      for (auto rec : orphaned_records(recent_[i])) {
        rec["removed"] = true;
        write(rec);
      }
    }
    if (!out_.flush()) throw reader_gone{};
    recent_.erase(recent_.begin() + static_cast<std::ptrdiff_t>(keep), recent_.end());
    next_ = fork;
    save();
  }

  std::vector<json> orphaned_records(const emitted_block& b) {
    if (b.records) return *b.records;
    // From the checkpoint: ask the node for the old block's logs by hash (EIP-234), which it may
    // still hold.
    json f = filter_;
    f["blockHash"] = b.hash;
    std::vector<json> out;
    try {
      json logs = client_.call("eth_getLogs", json::array({std::move(f)}));
      if (logs.is_array())
        for (auto& l : logs) {
          json rec = matcher_.record(l);
          if (wanted(rec)) out.push_back(std::move(rec));
        }
    } catch (const eth::rpc_error& e) {
      log::warn("block {} ({}) was orphaned before this run, and the node no longer has its logs: {}", b.number,
                b.hash, e.what());
    }
    return out;
  }

  // --follow: until a new head is announced (ws/ipc) or the poll interval passed; false on a signal.
  bool wait_for_blocks() {
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + poll_;
    constexpr milliseconds slice{100};
    while (steady_clock::now() < deadline) {
      if (stopping()) return false;
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
      auto step = std::clamp(left, milliseconds(1), slice);
      if (client_.supports_subscriptions()) {
        if (client_.next_notification(step)) {
          while (client_.next_notification(milliseconds(0))) {
          }
          return !stopping();
        }
      } else {
        std::this_thread::sleep_for(step);
      }
    }
    return !stopping();
  }

  const logs_options& o_;
  eth::log_decoder matcher_;
  json filter_;
  eth::rpc_client client_;
  checkpoint_file checkpoint_;
  pipekit::io::line_writer out_;
  boost::asio::io_context io_;
  bool stop_ = false;
  std::chrono::milliseconds poll_{2000};
  std::uint64_t chunk_;
  std::uint64_t next_ = 0;                    // first block not yet emitted
  std::optional<std::uint64_t> last_wanted_;  // --to-block, without --follow
  std::deque<emitted_block> recent_;          // the last blocks emitted, consecutive, oldest first
};

int run_logs(const logs_options& o) {
  if (o.follow && o.to_block != "latest") fatal(exit_code::usage, "logs: --to-block cannot be used with --follow");
  if (o.chunk_size == 0) fatal(exit_code::usage, "logs: --chunk-size must be at least 1");
  auto abi = load_abi(o.abi_path);
  eth::log_decoder matcher(abi ? &*abi : nullptr, o.event);  // an unknown event: 65, as call's unknown function
  json filter;
  try {
    filter = eth::log_filter(o.addresses, matcher, o.topics);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::usage, "logs: {}", e.what());
  }
  follower f(o, std::move(matcher), std::move(filter));
  return f.run();
}

}  // namespace

void add_logs_command(CLI::App& app, command_table& commands) {
  static logs_options o;
  auto* s = app.add_subcommand("logs", "Decoded event logs as JSON Lines: a block range, or --follow new blocks");
  add_rpc_flags(s, o.rpc);
  s->add_option("--address", o.addresses, "Only logs of this contract (repeatable: any of them)")
      ->type_name("ADDRESS")
      ->allow_extra_args(false);
  s->add_option("--abi", o.abi_path, "JSON ABI file: decode every log whose event is in it")->type_name("FILE");
  s->add_option("--event", o.event,
                "Only this event: a name in --abi (all its overloads) or a signature such as "
                "'Transfer(address indexed from,address indexed to,uint256 value)'")
      ->type_name("NAME|SIG");
  s->add_option("--topic", o.topics,
                "Next topic position (after the event's topic 0): 32-byte 0x-hex, 'null' for any, or a comma-separated list "
                "(any of them); repeatable")
      ->type_name("TOPIC")
      ->allow_extra_args(false);
  s->add_option("--from-block", o.from_block,
                "First block: number or tag (default: latest; with an existing --checkpoint, the block after it)")
      ->type_name("BLOCK");
  s->add_option("--to-block", o.to_block, "Last block: number or tag (not with --follow)")->type_name("BLOCK")->capture_default_str();
  s->add_option("--chunk-size", o.chunk_size, "Blocks per eth_getLogs request; halved when the node says too large")
      ->capture_default_str();
  s->add_flag("--follow,-f", o.follow, "Keep going: emit the logs of new blocks as they come");
  s->add_option("--poll-interval", o.poll_interval, "--follow over http: how often to ask for new blocks")
      ->type_name("DURATION")
      ->capture_default_str();
  s->add_option("--confirmations", o.confirmations, "Only blocks this many blocks below the head (fewer reorgs)")
      ->capture_default_str();
  s->add_option("--checkpoint", o.checkpoint,
                "Record the last block fully written here, and resume after it (atomic writes; reorgs checked)")
      ->type_name("FILE");
  commands.add(s, [] { return run_logs(o); });
}

}  // namespace ethcall
