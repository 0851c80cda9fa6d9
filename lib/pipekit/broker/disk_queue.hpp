#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

// A FIFO of byte records on disk: nsq-broker's overflow and durable store for one topic or
// channel. The file format is specified in docs/disk-queue.md: segment files of
// [length][crc32c][payload] records and a small metadata file holding the consumed position.
//
// Thread-compatible: one owner calls everything; nothing here blocks except on the disk.
namespace pipekit::broker {

struct disk_queue_options {
  std::uint64_t max_bytes_per_file = 100 * 1024 * 1024;  // nsqd --max-bytes-per-file
  std::uint32_t max_record_size = 5 * 1024 * 1024;       // larger lengths on disk are corruption
  std::uint64_t sync_every = 2500;                        // nsqd --sync-every: flush() syncs after this many
};

// Where a record starts (or where reading stands): segment number and byte offset.
struct disk_position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  friend bool operator==(const disk_position&, const disk_position&) = default;
  friend auto operator<=>(const disk_position&, const disk_position&) = default;
};

// Errors are values (leveldb's Status): ok, or what failed and where.
struct disk_status {
  std::string error;  // empty when ok
  bool ok() const noexcept { return error.empty(); }
  static disk_status fail(std::string message) { return {std::move(message)}; }
};

// What opening found: damaged data is moved to "<segment>.bad-<n>" files, never deleted.
struct disk_recovery {
  std::uint64_t records = 0;             // unread records found
  std::uint64_t set_aside_bytes = 0;     // torn or corrupt bytes moved out of the segments
  std::uint64_t set_aside_records = 0;   // damaged ranges: at least one record each
  std::vector<std::string> set_aside;    // the files they were moved to
  std::vector<std::string> warnings;     // one line per problem, for the log
};

class disk_queue {
 public:
  // Opens the queue `name` in `dir` (created if missing), scanning every segment from the
  // consumed position so that what a kill -9 left on disk comes back and a torn or corrupt tail
  // is set aside. Fails only when the directory or files cannot be read or written.
  static disk_status open(const std::filesystem::path& dir, const std::string& name,
                          const disk_queue_options& options, std::unique_ptr<disk_queue>& out,
                          disk_recovery* recovery = nullptr);
  ~disk_queue();  // flushes and syncs what it can; errors are lost, so call close() to see them
  disk_queue(const disk_queue&) = delete;
  disk_queue& operator=(const disk_queue&) = delete;

  // Buffers a record; nothing is written until flush(). Fails only for an oversized record.
  disk_status put(std::span<const char> record);
  // Writes what put() buffered, all or nothing: on failure (disk full, I/O error) the files are
  // cut back and every record buffered since the last flush is gone, so the caller fails them
  // all. Syncs when sync_every records were written since the last sync.
  disk_status flush();
  // flush(), then fdatasync of the written segments and the metadata when it changed: after an
  // ok, a crash (even of the machine) loses none of the records put so far.
  disk_status sync();

  // Reads the next unread record into `out`; false when none is left (or on error, in `status`:
  // a record that fails its checksum sets the rest of its segment aside and reading goes on).
  bool read(std::string& out, disk_status& status);
  // Reading position: where the next read() starts.
  disk_position read_position() const noexcept { return read_; }

  // The consumed position persisted by sync(): records before it never come back after a
  // restart. By default it follows read(); with manual_commit(true) it moves only here, so a
  // crash redelivers everything read but not committed (nsq-broker's --durable).
  void commit(disk_position consumed);
  void manual_commit(bool on) noexcept { manual_commit_ = on; }

  std::uint64_t depth() const noexcept { return depth_; }       // records not yet read
  std::uint64_t pending() const noexcept { return pending_records_; }  // buffered, not flushed
  std::uint64_t set_aside_bytes() const noexcept { return set_aside_bytes_; }

  // Drops every record (nsqd's empty): files removed, positions reset.
  disk_status empty();
  // Flushes, syncs and closes; the queue must not be used after.
  disk_status close();
  // Removes the queue's files for good (topic or channel deleted); the queue must not be used after.
  void destroy();

 private:
  disk_queue(std::filesystem::path dir, std::string name, const disk_queue_options& options);
  std::filesystem::path segment_path(std::uint64_t segment) const;
  std::filesystem::path meta_path() const;
  disk_status recover(disk_recovery& recovery);
  bool probe_version(std::uint64_t segment) const;
  std::string check_consumed_offset(std::uint64_t segment, std::uint64_t offset) const;
  disk_status scan_segment(std::uint64_t segment, std::uint64_t from, disk_recovery& recovery);
  struct damaged_range {  // [begin, end) of a segment: not records; whole records from `end` on
    std::uint64_t begin, end;
    std::string why;
    bool one_record;  // its length was right: exactly one record
  };
  disk_status set_aside(std::uint64_t segment, const std::vector<damaged_range>& damaged, disk_recovery& recovery);
  disk_status open_write_segment(std::uint64_t segment);
  disk_status write_pending();
  disk_status write_meta();
  void drop_consumed_segments();
  bool fill_read_buffer(std::size_t need, disk_status& status);
  void next_read_segment();
  void close_files() noexcept;

  struct chunk {  // buffered records bound for one segment
    std::uint64_t segment;
    std::string bytes;
    std::uint64_t records = 0;
  };

  std::filesystem::path dir_;
  std::string name_;
  disk_queue_options options_;
  int write_fd_ = -1;
  int read_fd_ = -1;
  std::uint64_t read_fd_segment_ = 0;
  disk_position write_;     // end of the flushed data
  disk_position read_;      // next record to read
  disk_position consumed_;  // persisted by sync()
  disk_position meta_written_{~std::uint64_t{0}, 0};
  std::vector<chunk> pending_;
  std::uint64_t pending_end_ = 0;  // write_.offset plus what is buffered for the last segment
  std::uint64_t pending_records_ = 0;
  std::uint64_t depth_ = 0;
  std::uint64_t since_sync_ = 0;
  std::uint64_t set_aside_bytes_ = 0;
  std::uint64_t first_segment_ = 0;          // lowest segment that may still be on disk
  std::map<std::uint64_t, std::uint64_t> unread_;  // unread records per segment
  bool data_dirty_ = false;                  // written since the last fdatasync
  bool dir_dirty_ = false;                   // a segment file was created since the last sync
  std::uint64_t read_limit_ = 0;             // size of a finished segment being read
  std::uint64_t read_limit_segment_ = ~std::uint64_t{0};
  bool manual_commit_ = false;
  bool castagnoli_ = true;  // format version 2 (CRC-32C); false: version 1 (zlib's CRC-32)
  std::string read_buf_;
  std::size_t read_buf_pos_ = 0;
  std::uint64_t read_buf_offset_ = 0;  // file offset of read_buf_[0]
};

}  // namespace pipekit::broker
