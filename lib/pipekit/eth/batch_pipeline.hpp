#pragma once
// The ordered pipeline under `ethcall batch`, for any program that sends many calls as JSON-RPC
// batches and must answer in input order: a reader hands out numbered chunks of lines, workers
// (one connection each) turn a chunk into a result, a writer takes results back in input order.
// At most max_in_flight chunks are pending, working or done-but-unwritten, so memory stays bounded
// on any input. Thread-safe: every member may be called from any of the three roles' threads.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pipekit::eth {

// Lines handed to one worker: their numbers and texts, in input order.
struct batch_chunk {
  std::uint64_t seq = 0;
  std::vector<std::pair<std::uint64_t, std::string>> lines;  // number, text ("" + too_long below)
  std::vector<bool> too_long;
};

// What a worker made of a chunk: its output lines and how many were invalid or failed.
struct batch_result {
  std::string text;  // output lines, each ending in "\n"
  std::uint64_t invalid = 0, failed = 0;
};

class batch_pipeline {
 public:
  explicit batch_pipeline(std::size_t max_in_flight) : max_in_flight_(max_in_flight) {}

  // Reader: blocks while too many chunks are in flight. False once the pipeline stopped.
  bool push(batch_chunk c);
  // Reader: no more chunks will come.
  void close_input();
  // Worker: the next chunk, or nullopt when there is no more work.
  std::optional<batch_chunk> take();
  // Worker: the result of chunk seq.
  void finish(std::uint64_t seq, batch_result r);
  // Writer: the next chunk in input order, or nullopt when all are written (or stopped).
  std::optional<batch_result> next_in_order();
  // Writer: whether next_in_order() would not wait (to flush only when it would).
  bool ready_in_order();
  // Anyone: stop everything (the reader went away, or a worker failed with `failure`).
  void stop(std::exception_ptr failure = nullptr);
  std::exception_ptr failure();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t max_in_flight_;
  std::deque<batch_chunk> pending_;
  std::map<std::uint64_t, batch_result> done_;
  std::size_t working_ = 0;
  std::uint64_t next_out_ = 0;
  bool input_closed_ = false, stopped_ = false;
  std::exception_ptr failure_;
};

}  // namespace pipekit::eth
