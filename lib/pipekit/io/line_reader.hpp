#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pipekit::io {

constexpr std::size_t default_max_line = 16 * 1024 * 1024;

struct line {
  std::string_view text;     // without "\n" or "\r\n"; valid until the next call to next()
  std::uint64_t number = 0;  // 1-based
  bool too_long = false;     // longer than max_line: text is empty, the line was skipped to its end
  // Bytes that may be read past the end of text (the line ending and what follows it in the
  // reader's buffer): enough for simdjson's padding means parsing without a copy.
  std::size_t slack = 0;
};

// Reads lines from a file or stdin ("-"), with line numbers. CRLF endings are tolerated,
// a final line without "\n" is returned intact, a line over max_line comes back marked
// too_long (never a crash or an unbounded buffer).
class line_reader {
 public:
  // REQUIRES: path names a readable file or is "-". Throws fatal_error(66) otherwise.
  explicit line_reader(const std::string& path, std::size_t max_line = default_max_line);
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  // The next line, or nullopt at end of input. Throws fatal_error(74) on a read error.
  std::optional<line> next();

  // Called right before the reader would block on read(2): the place to flush output,
  // so a pipeline gets its results without added latency and without a write per line.
  void on_refill(std::function<void()> f) { on_refill_ = std::move(f); }

  // The descriptor read from (to poll(2) it, e.g. in on_refill).
  int fd() const { return fd_; }

  // Makes the reader stoppable from another thread: before each read(2) it waits (poll) for the
  // input or wake_fd, whichever is readable first. Once wake_fd is readable (an eventfd written
  // to, a pipe written to or closed), next() returns the lines already read, then nullopt as at
  // the end of input, and stopped() is true. Nothing more is read after that.
  void stop_on(int wake_fd) { wake_fd_ = wake_fd; }
  bool stopped() const { return stopped_; }
  // After stopped(): the bytes read of a line that had not ended yet (empty when none); it
  // would have been line line_number() + 1.
  std::string_view unfinished() const { return std::string_view(buf_).substr(start_); }
  // The number of the last line next() returned (0 before the first).
  std::uint64_t line_number() const { return number_; }

  // "stdin" or the file name, for messages such as "stdin:42: ...".
  const std::string& source() const { return source_; }

 private:
  bool fill();  // false at end of input (or once stopped)
  bool wait_for_input();  // false: woken to stop

  int fd_ = -1;
  bool owns_fd_ = false;
  bool eof_ = false;
  int wake_fd_ = -1;
  bool stopped_ = false;
  std::string source_;
  std::size_t max_line_;
  std::string buf_;
  std::size_t start_ = 0;  // first unconsumed byte in buf_
  std::uint64_t number_ = 0;
  std::function<void()> on_refill_;
};

}  // namespace pipekit::io
