#pragma once
// Decoded event logs over a block range, or followed as new blocks come, resumable from a
// checkpoint file, reorgs undone with "removed":true records (the records of event_log.hpp).
// What `ethcall logs` runs, and what generated bindings' follow helpers call.
//
// One loop serves every transport: reconcile the blocks already emitted with the node's chain
// (undo orphaned ones), then fetch the logs of the new blocks with eth_getLogs in chunks, checking
// each chunk's headers against the blocks before it. Over ws/ipc a newHeads subscription wakes
// the loop; over http it polls. The checkpoint holds the hashes of the last blocks, so a restart
// also notices a reorg that happened while it was down. Blocking, on the caller's thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/eth/event_log.hpp"
#include "pipekit/eth/rpc.hpp"

namespace pipekit::eth {

constexpr std::uint64_t default_chunk_size = 2000;
constexpr std::size_t max_recent_blocks = 64;  // reorgs deeper than this cannot be undone
constexpr int max_reorg_retries = 16;          // chunks refetched in a row because the chain moved
constexpr std::size_t max_checkpoint_file = 1u << 20;
constexpr int checkpoint_version = 1;

// A block already emitted: its hash, and its records (kept to undo it after a reorg; unknown for
// blocks that came from the checkpoint file).
struct emitted_block {
  std::uint64_t number = 0;
  std::string hash;
  std::optional<std::vector<nlohmann::json>> records;
};

// A checkpoint file: {"version":1,"block":N,"hash":"0x..","recent":["0x..",...]}, recent holding
// the hashes of blocks N-len+1..N (the last is "hash"). Written atomically: temp file, fsync,
// rename. Errors are eth::error with the path as subject(): unreadable, invalid_input (malformed,
// too large, a version this library does not write), write_failed.
class checkpoint_file {
 public:
  explicit checkpoint_file(std::string path) : path_(std::move(path)) {}
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // nullopt when the file does not exist yet.
  std::optional<std::pair<std::uint64_t, std::deque<emitted_block>>> load() const;
  void save(std::uint64_t block, const std::deque<emitted_block>& recent) const;

  static bool is_hash(std::string_view h);

 private:
  std::string path_;
};

struct follow_options {
  nlohmann::json filter = nlohmann::json::object();  // eth_getLogs filter without the range (log_filter())
  std::string from_block{};        // a tag or 0x-number; "" = latest (or after the checkpoint)
  std::string to_block = "latest"; // a tag or 0x-number; not with follow
  std::uint64_t chunk_size = default_chunk_size;  // halved when the node says a range is too large
  bool follow = false;
  std::chrono::milliseconds poll_interval{2000};  // follow over http
  std::string checkpoint{};                       // "" = none
  std::uint64_t confirmations = 0;                // only blocks this far below the head
};

// Where the records go. write: one record (false: the reader has gone; the follower stops quietly,
// checkpointing nothing more); flush: after each chunk's records, before its checkpoint (false as
// write); stopping: asked between chunks and while waiting (true: finish and return).
struct log_sink {
  std::function<bool(const nlohmann::json&)> write;
  std::function<bool()> flush;
  std::function<bool()> stopping = [] { return false; };
};

class log_follower {
 public:
  // Throws eth::error(invalid_argument) for a follow with a to_block, a zero chunk size or poll
  // interval. The first form owns its client; the second borrows one, which must outlive the
  // follower (a follow over WebSocket subscribes to newHeads on it for the follower's life).
  log_follower(rpc_client&& client, log_decoder decoder, follow_options o);
  log_follower(rpc_client& client, log_decoder decoder, follow_options o);

  // Until done (no follow), stopped, or the reader gone. Errors: eth::error (response, transport,
  // unsettled, the checkpoint's), rpc_error.
  void run(const log_sink& sink);

 private:
  struct header {
    std::uint64_t number = 0;
    std::string hash, parent;
  };

  void check_options() const;
  bool stopping();
  void start();
  void anchor();
  std::uint64_t resolve_block(const std::string& tag);
  bool pass();
  bool fetch_range(std::uint64_t target);
  std::optional<nlohmann::json> get_logs(std::uint64_t a, std::uint64_t b);
  std::optional<std::vector<header>> fetch_headers(std::uint64_t a, std::uint64_t b);
  std::optional<std::vector<header>> headers_of(const std::vector<std::uint64_t>& numbers);
  bool consistent(const std::vector<header>& headers, const nlohmann::json& logs, std::uint64_t a, std::uint64_t b) const;
  void commit(const std::vector<header>& headers, nlohmann::json logs, std::uint64_t b);
  bool wanted(const nlohmann::json& rec) const;
  void write(const nlohmann::json& rec);
  void flush();
  void save();
  void reconcile();
  std::vector<nlohmann::json> orphaned_records(const emitted_block& b);
  bool wait_for_blocks();

  follow_options o_;
  log_decoder matcher_;
  std::optional<rpc_client> owned_;
  rpc_client& client_;
  checkpoint_file checkpoint_;
  const log_sink* sink_ = nullptr;
  std::uint64_t chunk_;
  std::uint64_t next_ = 0;                    // first block not yet emitted
  std::optional<std::uint64_t> last_wanted_;  // to_block, without follow
  std::deque<emitted_block> recent_;          // the last blocks emitted, consecutive, oldest first
};

}  // namespace pipekit::eth
