#include "pipekit/eth/log_follower.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <thread>

#include <fmt/format.h>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/io/read_file.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

// The reader has gone: stop quietly, acknowledge (checkpoint) nothing more.
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
  throw error(error_kind::response, fmt::format("the node sent {} as {}, not a quantity", q.dump(), what));
}

std::string quantity(std::uint64_t n) { return fmt::format("0x{:x}", n); }

// The node refuses an eth_getLogs range as too long or its answer as too big. Each node says it
// its own way: geth/infura "query returned more than 10000 results", alchemy "Log response size
// exceeded", "block range is too wide", "exceed maximum block range", -32005 "limit exceeded".
bool range_too_large(const rpc_error& e) {
  if (e.code == -32005) return true;
  std::string m = e.what();
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view word : {"range", "too many", "too large", "too big", "more than", "exceed", "limit"})
    if (m.find(word) != std::string::npos) return true;
  return false;
}

}  // namespace

std::optional<std::pair<std::uint64_t, std::deque<emitted_block>>> checkpoint_file::load() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  std::string text;
  try {
    text = io::read_file(path_, max_checkpoint_file);
  } catch (const io::file_error& e) {
    throw error(e.too_large() ? error_kind::invalid_input : error_kind::unreadable, fmt::format("{}: {}", path_, e.what()), path_);
  }
  auto doc = pipekit::json::parse(text);
  if (!doc.ok()) throw error(error_kind::invalid_input, fmt::format("{}: not JSON: {}", path_, doc.error), path_);
  const json& j = doc.value;
  auto bad = [&](std::string_view why) { throw error(error_kind::invalid_input, fmt::format("{}: {}", path_, why), path_); };
  if (!j.is_object()) bad("not a checkpoint object");
  // A version this program does not know may mean anything: refuse it rather than resume wrong.
  if (j.value("version", json()) != json(checkpoint_version))
    bad(fmt::format("version {} is not {}, the one pipekit writes", j.value("version", json()).dump().substr(0, 40),
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

void checkpoint_file::save(std::uint64_t block, const std::deque<emitted_block>& recent) const {
  json hashes = json::array();
  for (const auto& b : recent) hashes.push_back(b.hash);
  json doc = {{"version", checkpoint_version}, {"block", block}, {"hash", recent.empty() ? json() : json(recent.back().hash)},
              {"recent", std::move(hashes)}};
  std::string failure = io::write_file_atomic(path_, doc.dump() + "\n");
  if (!failure.empty()) throw error(error_kind::write_failed, fmt::format("{}: {}", path_, failure), path_);
}

bool checkpoint_file::is_hash(std::string_view h) {
  return h.size() == 66 && h.starts_with("0x") && find_non_hex(h.substr(2)) == std::string_view::npos;
}

log_follower::log_follower(rpc_client&& client, log_decoder decoder, follow_options o)
    : o_(std::move(o)), matcher_(std::move(decoder)), owned_(std::move(client)), client_(*owned_),
      checkpoint_(o_.checkpoint), chunk_(o_.chunk_size) {
  check_options();
}

log_follower::log_follower(rpc_client& client, log_decoder decoder, follow_options o)
    : o_(std::move(o)), matcher_(std::move(decoder)), client_(client), checkpoint_(o_.checkpoint),
      chunk_(o_.chunk_size) {
  check_options();
}

void log_follower::check_options() const {
  if (o_.follow && o_.to_block != "latest") throw error(error_kind::invalid_argument, "a follower has no last block");
  if (o_.chunk_size == 0) throw error(error_kind::invalid_argument, "the chunk size must be at least 1");
  if (o_.poll_interval.count() <= 0) throw error(error_kind::invalid_argument, "the poll interval must be more than 0");
}

void log_follower::run(const log_sink& sink) {
  sink_ = &sink;
  try {
    start();
    if (o_.follow && client_.supports_subscriptions()) client_.subscribe(json::array({"newHeads"}));
    do {
      if (!pass()) break;
    } while (o_.follow && wait_for_blocks());
    flush();
  } catch (const reader_gone&) {
    log::debug("the reader has gone: stopping");
  }
  sink_ = nullptr;
}

bool log_follower::stopping() { return sink_->stopping(); }

void log_follower::start() {
  std::optional<std::uint64_t> resumed;
  if (checkpoint_.enabled()) {
    if (auto cp = checkpoint_.load()) {
      resumed = cp->first;
      recent_ = std::move(cp->second);
      log::info("{}: resuming after block {}", checkpoint_.path(), *resumed);
    }
  }
  next_ = resumed ? *resumed + 1 : resolve_block(o_.from_block.empty() ? "latest" : o_.from_block);
  if (!o_.follow) last_wanted_ = resolve_block(o_.to_block);
  if (!resumed && next_ > 0) anchor();
}

// A fresh start remembers the block before the first one (nothing emitted from it), so a
// reorg of the first block is told apart from a deeper one.
void log_follower::anchor() {
  auto h = headers_of({next_ - 1});
  if (h) recent_.push_back({next_ - 1, h->front().hash, std::vector<json>{}});
}

std::uint64_t log_follower::resolve_block(const std::string& p) {
  if (p.starts_with("0x")) return parse_quantity(json(p), "a block number");
  if (p == "earliest") return 0;
  if (p == "latest") return parse_quantity(client_.call("eth_blockNumber", json::array()), "eth_blockNumber");
  json b = client_.call("eth_getBlockByNumber", json::array({p, false}));
  if (!b.is_object()) throw error(error_kind::response, fmt::format("{}: no \"{}\" block", client_.url(), p));
  return parse_quantity(b.value("number", json()), "a block number");
}

// One round: undo what a reorg orphaned, then every new block up to the target. False once
// stopped or, without follow, done.
bool log_follower::pass() {
  for (int attempt = 0; attempt < max_reorg_retries; ++attempt) {
    reconcile();
    std::uint64_t head = parse_quantity(client_.call("eth_blockNumber", json::array()), "eth_blockNumber");
    if (head < o_.confirmations) return !stopping();
    std::uint64_t target = head - o_.confirmations;
    if (last_wanted_) target = std::min(target, *last_wanted_);
    if (fetch_range(target)) return o_.follow && !stopping();
    if (sink_->stopping()) return false;
    log::info("the chain changed while fetching; reconciling");
  }
  throw error(error_kind::unsettled, fmt::format("{}: the chain kept changing under {} fetches in a row; try again",
                                               client_.url(), max_reorg_retries));
}

// Blocks next_..target in chunks. False when a chunk did not fit the blocks before it (a reorg
// in flight) or a signal came.
bool log_follower::fetch_range(std::uint64_t target) {
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

std::optional<json> log_follower::get_logs(std::uint64_t a, std::uint64_t b) {
  json f = o_.filter;
  f["fromBlock"] = quantity(a);
  f["toBlock"] = quantity(b);
  try {
    json logs = client_.call("eth_getLogs", json::array({std::move(f)}));
    if (!logs.is_array()) throw error(error_kind::response, fmt::format("{}: eth_getLogs returned {}", client_.url(), logs.dump()));
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
std::optional<std::vector<log_follower::header>> log_follower::fetch_headers(std::uint64_t a, std::uint64_t b) {
  std::vector<std::uint64_t> numbers;
  const std::uint64_t tail = b - a + 1 > max_recent_blocks ? b - max_recent_blocks + 1 : a;
  if (tail != a) numbers.push_back(a);
  for (std::uint64_t n = tail; n <= b; ++n) numbers.push_back(n);
  return headers_of(numbers);
}

std::optional<std::vector<log_follower::header>> log_follower::headers_of(const std::vector<std::uint64_t>& numbers) {
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
      throw error(error_kind::response, fmt::format("{}: asked for block {}, got {}", client_.url(), numbers[i],
                                                   blk.value("number", json()).dump()));
    out.push_back(std::move(h));
  }
  return out;
}

bool log_follower::consistent(const std::vector<header>& headers, const json& logs, std::uint64_t a, std::uint64_t b) const {
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
void log_follower::commit(const std::vector<header>& headers, json logs, std::uint64_t b) {
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
  flush();

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

// With events named, only theirs: an anonymous event has no topic 0 to filter on, so the node
// also sends other logs, which do not decode as it.
bool log_follower::wanted(const json& rec) const {
  if (matcher_.named_events().empty() || !rec["event"].is_null()) return true;
  log::debug("block {} log {}: not an event asked for; skipped", rec["block_number"].dump(), rec["log_index"].dump());
  return false;
}

void log_follower::write(const json& rec) {
  if (!sink_->write(rec)) throw reader_gone{};
}

void log_follower::flush() {
  if (!sink_->flush()) throw reader_gone{};
}

void log_follower::save() {
  if (checkpoint_.enabled()) checkpoint_.save(next_ - 1, recent_);
}

// Compares the blocks we emitted with the node's chain; orphaned ones come out again with
// "removed":true (in the order they were emitted), and the next fetch starts after the fork.
void log_follower::reconcile() {
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
  flush();
  recent_.erase(recent_.begin() + static_cast<std::ptrdiff_t>(keep), recent_.end());
  next_ = fork;
  save();
}

std::vector<json> log_follower::orphaned_records(const emitted_block& b) {
  if (b.records) return *b.records;
  // From the checkpoint: ask the node for the old block's logs by hash (EIP-234), which it may
  // still hold.
  json f = o_.filter;
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

// follow: until a new head is announced (ws/ipc) or the poll interval passed; false once stopping.
bool log_follower::wait_for_blocks() {
  using namespace std::chrono;
  const auto deadline = steady_clock::now() + o_.poll_interval;
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

}  // namespace pipekit::eth
