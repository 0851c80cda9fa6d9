#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

// nsq-tail's archive mode (nsq's nsq_to_file): lines appended to a file in a directory, written
// under a temporary name (<final>.tmp) and renamed to its final name when complete (rotated or
// closed). The caller FINishes messages only after sync(), which fsyncs what was written. A file
// whose write or sync failed (disk full) is never renamed: it stays under its temporary name.
namespace pipekit::nsq {

struct archive_options {
  std::string dir;
  // <TOPIC>, <HOST> (short host name), <DATETIME> (UTC, %Y-%m-%d_%H), <REV> ("" or "-N" so an
  // existing file is never overwritten); ".gz" is added with gzip.
  std::string filename_format = "<TOPIC>.<HOST><REV>.<DATETIME>.log";
  std::string topic;
  std::uint64_t rotate_size = 0;           // bytes of lines (before gzip); 0: no limit
  std::chrono::milliseconds rotate_interval{0};  // 0: no limit
  bool gzip = false;
  int gzip_level = 6;
};

class archive_writer {
 public:
  explicit archive_writer(archive_options options);
  ~archive_writer();
  archive_writer(const archive_writer&) = delete;
  archive_writer& operator=(const archive_writer&) = delete;

  // Appends data to the current file (opening one when none is open). Throws fatal_error (74).
  void write(std::string_view data);
  // True when the current file is due for rotation (size, with `buffered` bytes not yet written,
  // interval, or the hour in <DATETIME>).
  bool rotation_due(std::uint64_t buffered = 0) const;
  // Everything written so far is on disk (gzip flushed, fsync).
  void sync();
  // Completes the current file: gzip trailer, fsync, rename to its final name, fsync the directory.
  // After a failed write or sync it only closes the file, left under its temporary name.
  void close();
  const std::string& current_path() const noexcept { return final_path_; }

 private:
  void open();
  void write_raw(const char* data, std::size_t n);
  void deflate_out(int flush, std::string_view in);
  [[noreturn]] void fail(const char* what);

  archive_options o_;
  int fd_ = -1;
  std::string final_path_, temp_path_;
  std::uint64_t size_ = 0;
  bool failed_ = false;  // a write or sync of the current file failed: it is torn
  std::chrono::steady_clock::time_point opened_;
  std::chrono::system_clock::time_point next_hour_;
  struct zstate;
  std::unique_ptr<zstate> z_;
};

}  // namespace pipekit::nsq
