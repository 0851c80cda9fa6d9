#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace pipekit::io {

// Writes JSON Lines (or any lines) to a file descriptor with every write checked.
// When the descriptor is a pipe or terminal each line is flushed as it is written
// (unless batching was asked for, see below); to a regular file output is buffered.
// A closed reader (EPIPE) is reported, not fatal: write_line returns false and the
// writer stays closed, so the caller stops taking work and acknowledges nothing unwritten.
class line_writer {
 public:
  explicit line_writer(int fd);
  // Opens (creates/truncates) path for writing; "-" is stdout. Throws fatal_error(74/66).
  explicit line_writer(const std::string& path);
  ~line_writer();
  line_writer(const line_writer&) = delete;
  line_writer& operator=(const line_writer&) = delete;

  // Appends text and "\n". Returns false once the reader has gone (EPIPE).
  // Throws fatal_error(74) for any other write error (disk full, I/O error).
  bool write_line(std::string_view text);
  // Writes out what is buffered. Same results as write_line.
  bool flush();

  // Buffer lines even to a pipe; the caller flushes before it blocks (see
  // line_reader::on_refill). Used by programs that turn input lines into output lines.
  void batch_until_flush() { per_line_ = false; }

  bool closed() const { return closed_; }
  bool flushes_per_line() const { return per_line_; }

 private:
  int fd_;
  bool owns_fd_ = false;
  bool per_line_;
  bool closed_ = false;
  std::string name_;
  std::string buf_;
};

}  // namespace pipekit::io
