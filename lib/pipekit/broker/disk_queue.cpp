#include "pipekit/broker/disk_queue.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "pipekit/io/atomic_file.hpp"
#include "pipekit/io/crc32c.hpp"

namespace pipekit::broker {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t header_size = 8;  // u32 length, u32 checksum of (length bytes, payload); little-endian
constexpr std::size_t read_chunk = 256 * 1024;
// Version 2 checksums records with CRC-32C, version 1 (queues written before it) with zlib's CRC-32;
// a queue keeps its version for life (docs/disk-queue.md).
constexpr std::string_view meta_magic_v1 = "pipekit-disk-queue 1";
constexpr std::string_view meta_magic_v2 = "pipekit-disk-queue 2";
// Segment numbers are file names (at least 6 digits); a larger one is not from this code.
constexpr std::uint64_t max_segment = 999'999'999'999'999;

void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
std::uint32_t record_crc(bool castagnoli, const char* length_bytes, const char* payload, std::size_t size) {
  if (castagnoli) return io::crc32c({payload, size}, io::crc32c({length_bytes, 4}));
  uLong crc = ::crc32(0L, reinterpret_cast<const Bytef*>(length_bytes), 4);
  crc = ::crc32(crc, reinterpret_cast<const Bytef*>(payload), static_cast<uInt>(size));
  return static_cast<std::uint32_t>(crc);
}

std::string errno_text(int e) { return std::strerror(e); }

disk_status sys_fail(std::string_view what, const fs::path& path, int e = errno) {
  return disk_status::fail(fmt::format("{} {}: {}", what, path.string(), errno_text(e)));
}

bool write_all(int fd, const char* data, std::size_t size, int& err) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Reads [offset, offset+size) completely; false on a short read or an error (err = 0 for EOF).
bool pread_all(int fd, char* data, std::size_t size, std::uint64_t offset, int& err) {
  while (size > 0) {
    ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    if (n == 0) {
      err = 0;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

disk_status sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_fail("opening", dir);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  return rc == 0 ? disk_status{} : sys_fail("syncing", dir, e);
}

std::uint64_t file_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Appends [offset, offset + size) of `from` to `to` in bounded pieces; false with err set.
bool copy_range(int from, std::uint64_t offset, std::uint64_t size, int to, int& err) {
  std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(size, 1 << 20)), '\0');
  while (size > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buf.size()));
    if (!pread_all(from, buf.data(), n, offset, err)) {
      if (err == 0) err = EIO;
      return false;
    }
    if (!write_all(to, buf.data(), n, err)) return false;
    offset += n;
    size -= n;
  }
  return true;
}

// Checks a segment's records through one bounded buffer (at most one record, or read_chunk).
class segment_reader {
 public:
  segment_reader(int fd, std::uint64_t size, bool castagnoli, std::uint32_t max_record_size)
      : fd_(fd), size_(size), castagnoli_(castagnoli), max_record_size_(max_record_size) {}
  std::uint64_t size() const noexcept { return size_; }

  // Empty when a whole record with the right checksum starts at `off` (`end`: where the next
  // one starts), else what is wrong with it.
  std::string check(std::uint64_t off, std::uint64_t& end) {
    if (off > size_ || size_ - off < header_size) return "torn record header";
    const char* h = at(off, header_size);
    if (!h) return "read error";
    std::uint32_t len = get_u32(h);
    if (len > max_record_size_) return fmt::format("record length {} over the limit", len);
    if (size_ - off - header_size < len) return "torn record";
    h = at(off, header_size + len);
    if (!h) return "read error";
    if (record_crc(castagnoli_, h, h + header_size, len) != get_u32(h + 4)) return "checksum mismatch";
    end = off + header_size + len;
    return {};
  }

  // Where whole records start again after damage at `off` (the end of the segment when nowhere):
  // past the damaged record when its length leads to a good record or the end (`one_record`: only
  // its payload was damaged), else the first offset after `off` where a good record starts whose
  // successor's header is plausible too (length within the limit and within the segment).
  std::uint64_t resync(std::uint64_t off, bool& one_record) {
    std::uint64_t end = 0, len = 0;
    one_record = false;
    if (length_at(off, len) && len <= size_ - off - header_size) {
      const std::uint64_t after = off + header_size + len;
      if (after == size_ || check(after, end).empty()) {
        one_record = true;
        return after;
      }
    }
    for (std::uint64_t p = off + 1; size_ - p >= header_size; ++p) {
      const char* h = at(p, header_size);
      if (!h) break;
      const std::uint64_t after = p + header_size + get_u32(h);
      if (get_u32(h) > max_record_size_ || after > size_) continue;
      if (after != size_ && (!length_at(after, len) || len > size_ - after - header_size)) continue;
      if (check(p, end).empty()) return p;
    }
    return size_;
  }

 private:
  // The length field at `off` when the header is whole and the length within the limit; read
  // without moving the buffer (resync() looks ahead from every offset it tries).
  bool length_at(std::uint64_t off, std::uint64_t& len) {
    if (off > size_ || size_ - off < header_size) return false;
    char h[header_size];
    if (off >= buf_offset_ && off + header_size <= buf_offset_ + buf_.size()) {
      std::memcpy(h, buf_.data() + (off - buf_offset_), header_size);
    } else {
      int err = 0;
      if (!pread_all(fd_, h, header_size, off, err)) return false;
    }
    len = get_u32(h);
    return len <= max_record_size_;
  }

  // [off, off + n) from the buffer, read from the file when it is not there; nullptr on an error.
  const char* at(std::uint64_t off, std::size_t n) {
    if (off >= buf_offset_ && off + n <= buf_offset_ + buf_.size()) return buf_.data() + (off - buf_offset_);
    buf_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, read_chunk), size_ - off)));
    int err = 0;
    if (!pread_all(fd_, buf_.data(), buf_.size(), off, err)) {
      buf_.clear();
      return nullptr;
    }
    buf_offset_ = off;
    return buf_.data();
  }

  int fd_;
  std::uint64_t size_;
  bool castagnoli_;
  std::uint32_t max_record_size_;
  std::string buf_;
  std::uint64_t buf_offset_ = 0;
};

// What the metadata file says, checked strictly: exactly "<magic>\n<segment> <offset>\n" in
// decimal digits (docs/disk-queue.md); anything else is named in `problem`.
struct meta_contents {
  bool present = false;
  std::optional<bool> castagnoli;         // the version, when the first line is right
  std::optional<disk_position> consumed;  // the position, when the whole file is right
  std::string problem;
};

meta_contents read_meta(const fs::path& path) {
  constexpr std::size_t max_meta_size = 256;
  meta_contents m;
  std::ifstream in(path, std::ios::binary);
  if (!in) return m;
  m.present = true;
  std::string text(max_meta_size + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) {
    m.problem = "cannot be read";
    return m;
  }
  if (text.size() > max_meta_size) {
    m.problem = fmt::format("is over {} bytes", max_meta_size);
    return m;
  }
  std::string_view rest(text);
  auto nl = rest.find('\n');
  std::string_view magic = rest.substr(0, nl);
  if (magic == meta_magic_v2 || magic == meta_magic_v1) m.castagnoli = magic == meta_magic_v2;
  if (!m.castagnoli || nl == std::string_view::npos) {
    m.problem = fmt::format("holds {:?}, not \"{}\\n<segment> <offset>\\n\"", text, meta_magic_v2);
    return m;
  }
  rest.remove_prefix(nl + 1);
  std::string_view line = rest.ends_with('\n') ? rest.substr(0, rest.size() - 1) : rest;
  auto number = [](std::string_view digits, std::uint64_t& v) {
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    return err == std::errc() && end == digits.data() + digits.size();
  };
  auto space = line.find(' ');
  std::uint64_t segment = 0, offset = 0;
  if (space == std::string_view::npos || !number(line.substr(0, space), segment) ||
      !number(line.substr(space + 1), offset) || segment > max_segment) {
    m.problem = fmt::format("holds the position {:?}, not two decimal numbers \"<segment> <offset>\\n\"", rest);
    return m;
  }
  m.consumed = disk_position{segment, offset};
  return m;
}

}  // namespace

disk_queue::disk_queue(fs::path dir, std::string name, const disk_queue_options& options)
    : dir_(std::move(dir)), name_(std::move(name)), options_(options) {}

disk_queue::~disk_queue() {
  if (write_fd_ >= 0 || !pending_.empty()) (void)sync();
  close_files();
}

fs::path disk_queue::segment_path(std::uint64_t segment) const {
  return dir_ / fmt::format("{}.diskqueue.{:06}.dat", name_, segment);
}

fs::path disk_queue::meta_path() const { return dir_ / fmt::format("{}.diskqueue.meta", name_); }

disk_status disk_queue::open(const fs::path& dir, const std::string& name, const disk_queue_options& options,
                             std::unique_ptr<disk_queue>& out, disk_recovery* recovery) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return disk_status::fail(fmt::format("creating {}: {}", dir.string(), ec.message()));
  std::unique_ptr<disk_queue> q(new disk_queue(dir, name, options));
  disk_recovery local;
  disk_status st = q->recover(recovery ? *recovery : local);
  if (!st.ok()) return st;
  out = std::move(q);
  return {};
}

// Without metadata (a crash before the first was written) the version is the one whose checksum
// the segment's first record has; version 2 when neither matches (the record is then set aside).
bool disk_queue::probe_version(std::uint64_t segment) const {
  int fd = ::open(segment_path(segment).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char h[header_size];
  std::string payload;
  bool v1 = false;
  if (::pread(fd, h, header_size, 0) == static_cast<ssize_t>(header_size)) {
    std::uint32_t len = get_u32(h);
    if (len <= options_.max_record_size) {
      payload.resize(len);
      if (::pread(fd, payload.data(), len, header_size) == static_cast<ssize_t>(len))
        v1 = record_crc(true, h, payload.data(), len) != get_u32(h + 4) &&
             record_crc(false, h, payload.data(), len) == get_u32(h + 4);
    }
  }
  ::close(fd);
  return !v1;
}

// The metadata holds only the consumed position; the end of the data is whatever the segments
// hold, checked record by record, so nothing written before a crash is lost or misread. A
// position that does not fit what is on disk is not used (every record is delivered again), and
// no segment is ever deleted because of the metadata.
disk_status disk_queue::recover(disk_recovery& recovery) {
  std::vector<std::uint64_t> segments;
  const std::string prefix = name_ + ".diskqueue.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string file = entry.path().filename().string();
    if (file.starts_with(prefix) && file.ends_with(".dat.tmp")) fs::remove(entry.path(), ec);  // a rewrite cut short
    if (file.starts_with(prefix + "meta.tmp.")) fs::remove(entry.path(), ec);  // a metadata update cut short
    if (!file.starts_with(prefix) || !file.ends_with(".dat")) continue;
    std::string_view digits(file.data() + prefix.size(), file.size() - prefix.size() - 4);
    std::uint64_t segment = 0;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), segment);
    // Exactly the name segment_path() gives it (so "0000007" or "+7" are not segments).
    if (err == std::errc() && end == digits.data() + digits.size() && segment <= max_segment &&
        fmt::format("{:06}", segment) == digits)
      segments.push_back(segment);
  }
  if (ec) return disk_status::fail(fmt::format("listing {}: {}", dir_.string(), ec.message()));
  std::sort(segments.begin(), segments.end());

  const meta_contents meta = read_meta(meta_path());
  if (meta.castagnoli) castagnoli_ = *meta.castagnoli;
  else if (!segments.empty()) castagnoli_ = probe_version(segments.front());

  // Without (usable) metadata: from the first record on disk.
  disk_position start{segments.empty() ? 0 : segments.front(), 0};
  std::string distrust = meta.problem;  // why the stored position is not used
  if (meta.consumed) {
    const auto [seg, off] = *meta.consumed;
    if (segments.empty()) {
      start = {seg, 0};  // nothing on disk: the next record goes where reading stands
    } else if (seg < segments.front()) {
      start = {segments.front(), 0};  // its segment was consumed and removed, the metadata not yet rewritten
    } else if (seg > segments.back()) {
      distrust = fmt::format("consumed position {} {} is past the last segment on disk ({})", seg, off,
                             segments.back());
    } else if (seg != segments.front()) {
      distrust = fmt::format("consumed position {} {} is after segment {}, which is still on disk", seg, off,
                             segments.front());
    } else {
      distrust = check_consumed_offset(seg, off);
      if (distrust.empty()) start = {seg, off};
    }
  }
  if (meta.present && !distrust.empty()) {
    recovery.warnings.push_back(fmt::format(
        "{}: {}; the metadata is not used: every record on disk is delivered again, from segment {} offset 0",
        meta_path().string(), distrust, start.segment));
  }
  consumed_ = start;
  for (std::uint64_t s : segments) {
    disk_status st = scan_segment(s, s == consumed_.segment ? consumed_.offset : 0, recovery);
    if (!st.ok()) return st;
  }
  read_ = consumed_;
  if (!segments.empty()) {
    std::uint64_t last = segments.back();
    int fd = ::open(segment_path(last).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sys_fail("opening", segment_path(last));
    write_ = {last, file_size(fd)};
    ::close(fd);
  } else {
    write_ = {consumed_.segment, 0};
    read_ = consumed_ = write_;
  }
  pending_end_ = write_.offset;
  first_segment_ = segments.empty() ? consumed_.segment : segments.front();
  // Metadata that was not used is rewritten at the next sync.
  if (meta.consumed && distrust.empty()) meta_written_ = consumed_;
  recovery.records = depth_;
  set_aside_bytes_ = recovery.set_aside_bytes;
  return {};
}

// Empty when `offset` can be where reading stands in `segment`: its end, or the start of a whole
// record with the right checksum that the records before it lead to. Else what is wrong.
std::string disk_queue::check_consumed_offset(std::uint64_t segment, std::uint64_t offset) const {
  fs::path path = segment_path(segment);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fmt::format("cannot open {}: {}", path.string(), errno_text(errno));
  segment_reader r(fd, file_size(fd), castagnoli_, options_.max_record_size);
  std::string why;
  std::uint64_t end = 0;
  if (offset > r.size()) {
    why = fmt::format("consumed offset {} is past the end of segment {} ({} bytes)", offset, segment, r.size());
  } else if (offset != 0 && offset != r.size() && !r.check(offset, end).empty()) {
    // A damaged record there, or not a record boundary at all: walk the records before it.
    std::uint64_t off = 0;
    while (off < offset && r.check(off, end).empty()) off = end;
    if (off != offset)
      why = fmt::format("consumed offset {} in segment {} is not the start of a record", offset, segment);
  }
  ::close(fd);
  return why;
}

disk_status disk_queue::scan_segment(std::uint64_t segment, std::uint64_t from, disk_recovery& recovery) {
  fs::path path = segment_path(segment);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_fail("opening", path);
  segment_reader r(fd, file_size(fd), castagnoli_, options_.max_record_size);
  std::uint64_t off = from, records = 0, end = 0;
  std::vector<damaged_range> damaged;
  while (off < r.size()) {
    std::string why = r.check(off, end);
    if (why.empty()) {
      off = end;
      ++records;
      continue;
    }
    damaged_range d{off, 0, std::move(why), false};
    d.end = r.resync(off, d.one_record);
    off = d.end;
    damaged.push_back(std::move(d));
  }
  ::close(fd);
  if (!damaged.empty()) {
    disk_status st = set_aside(segment, damaged, recovery);
    if (!st.ok()) return st;
  }
  if (records > 0) unread_[segment] = records;
  depth_ += records;
  return {};
}

// Moves each damaged range of `segment` into a ".bad-N" file beside it and takes it out of the
// segment (cut at the end, or the segment rewritten without it): damaged data is kept for
// inspection, never parsed again, never deleted; the records around it stay.
disk_status disk_queue::set_aside(std::uint64_t segment, const std::vector<damaged_range>& damaged,
                                  disk_recovery& recovery) {
  fs::path path = segment_path(segment);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return sys_fail("opening", path);
  const std::uint64_t size = file_size(fd);
  int n = 1, err = 0;
  for (const damaged_range& d : damaged) {
    fs::path bad_path;
    do {
      bad_path = path;
      bad_path += fmt::format(".bad-{}", n++);
    } while (fs::exists(bad_path));
    int bfd = ::open(bad_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (bfd < 0 || !copy_range(fd, d.begin, d.end - d.begin, bfd, err) || ::fsync(bfd) != 0) {
      int e = bfd < 0 ? errno : (err ? err : errno);
      if (bfd >= 0) ::close(bfd);
      ::close(fd);
      return sys_fail("setting damaged data aside in", bad_path, e);
    }
    ::close(bfd);
    const std::uint64_t bytes = d.end - d.begin;
    set_aside_bytes_ += bytes;
    recovery.set_aside_bytes += bytes;
    recovery.set_aside_records += 1;
    recovery.set_aside.push_back(bad_path.string());
    recovery.warnings.push_back(fmt::format(
        "{}: {} at byte {}; {} bytes ({}) set aside in {}{}", path.string(), d.why, d.begin, bytes,
        d.one_record ? "1 record" : "at least 1 record", bad_path.filename().string(),
        d.end < size ? fmt::format("; the records after it, from byte {}, are kept", d.end) : ""));
  }
  if (damaged.size() == 1 && damaged[0].end == size) {
    // Damage to the end (a torn tail): cut the segment there.
    if (::ftruncate(fd, static_cast<off_t>(damaged[0].begin)) != 0 || ::fsync(fd) != 0) {
      int e = errno;
      ::close(fd);
      return sys_fail("cutting", path, e);
    }
  } else {
    // Good records after the damage: the segment is written anew without it, then replaces the old.
    fs::path tmp = path;
    tmp += ".tmp";
    int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::uint64_t kept = 0;
    bool ok = tfd >= 0;
    for (std::size_t i = 0; ok && i <= damaged.size(); ++i) {
      const std::uint64_t end = i < damaged.size() ? damaged[i].begin : size;
      ok = copy_range(fd, kept, end - kept, tfd, err);
      if (i < damaged.size()) kept = damaged[i].end;
    }
    if (!ok || ::fsync(tfd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = tfd < 0 ? errno : (err ? err : errno);
      if (tfd >= 0) ::close(tfd);
      ::unlink(tmp.c_str());
      ::close(fd);
      return sys_fail("writing the segment without its damaged records to", tmp, e);
    }
    ::close(tfd);
  }
  ::close(fd);
  return sync_dir(dir_);
}

disk_status disk_queue::put(std::span<const char> record) {
  if (record.size() > options_.max_record_size)
    return disk_status::fail(fmt::format("record of {} bytes over the limit of {}", record.size(),
                                         options_.max_record_size));
  std::uint64_t segment = pending_.empty() ? write_.segment : pending_.back().segment;
  std::uint64_t need = header_size + record.size();
  if (pending_end_ > 0 && pending_end_ + need > options_.max_bytes_per_file) {
    ++segment;
    pending_end_ = 0;
  }
  if (pending_.empty() || pending_.back().segment != segment) pending_.push_back({segment, {}, 0});
  chunk& c = pending_.back();
  char h[header_size];
  put_u32(h, static_cast<std::uint32_t>(record.size()));
  put_u32(h + 4, record_crc(castagnoli_, h, record.data(), record.size()));
  c.bytes.append(h, header_size);
  c.bytes.append(record.data(), record.size());
  ++c.records;
  ++pending_records_;
  pending_end_ += need;
  return {};
}

disk_status disk_queue::open_write_segment(std::uint64_t segment) {
  if (write_fd_ >= 0) ::close(write_fd_);
  fs::path path = segment_path(segment);
  write_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (write_fd_ < 0) return sys_fail("opening", path);
  return {};
}

disk_status disk_queue::write_pending() {
  if (pending_.empty()) return {};
  struct undo {
    std::uint64_t segment, size;
    bool created;
  };
  std::vector<undo> undos;
  disk_status st;
  disk_position end = write_;
  for (chunk& c : pending_) {
    if (c.segment != end.segment || write_fd_ < 0) {
      if (c.segment != end.segment && write_fd_ >= 0 && data_dirty_) {
        // Rotation (every max_bytes_per_file): the finished segment is synced now, once.
        if (::fdatasync(write_fd_) != 0) {
          st = sys_fail("syncing", segment_path(end.segment));
          break;
        }
      }
      bool created = c.segment != end.segment || !fs::exists(segment_path(c.segment));
      st = open_write_segment(c.segment);
      if (!st.ok()) break;
      if (created) dir_dirty_ = true;
      undos.push_back({c.segment, c.segment == end.segment ? end.offset : 0, created && c.segment != write_.segment});
      if (c.segment != end.segment) end = {c.segment, 0};
    } else if (undos.empty()) {
      undos.push_back({c.segment, end.offset, false});
    }
    int err = 0;
    if (!write_all(write_fd_, c.bytes.data(), c.bytes.size(), err)) {
      st = sys_fail("writing", segment_path(c.segment), err);
      break;
    }
    end.offset += c.bytes.size();
    data_dirty_ = true;
  }
  if (!st.ok()) {
    // All or nothing: cut every touched segment back to where it was, remove new ones.
    for (auto it = undos.rbegin(); it != undos.rend(); ++it) {
      if (it->created) {
        ::unlink(segment_path(it->segment).c_str());
      } else if (::truncate(segment_path(it->segment).c_str(), static_cast<off_t>(it->size)) != 0) {
        st.error += fmt::format("; and cutting it back failed: {}", errno_text(errno));
      }
    }
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
    pending_.clear();
    pending_records_ = 0;
    pending_end_ = write_.offset;
    return st;
  }
  for (const chunk& c : pending_) unread_[c.segment] += c.records;
  depth_ += pending_records_;
  since_sync_ += pending_records_;
  write_ = end;
  pending_.clear();
  pending_records_ = 0;
  pending_end_ = write_.offset;
  return {};
}

disk_status disk_queue::flush() {
  disk_status st = write_pending();
  if (!st.ok()) return st;
  if (since_sync_ >= options_.sync_every) return sync();
  return {};
}

disk_status disk_queue::sync() {
  disk_status st = write_pending();
  if (!st.ok()) return st;
  if (data_dirty_ && write_fd_ >= 0) {
    if (::fdatasync(write_fd_) != 0) return sys_fail("syncing", segment_path(write_.segment));
  }
  data_dirty_ = false;
  if (dir_dirty_) {
    st = sync_dir(dir_);
    if (!st.ok()) return st;
    dir_dirty_ = false;
  }
  since_sync_ = 0;
  if (consumed_ != meta_written_) return write_meta();
  return {};
}

disk_status disk_queue::write_meta() {
  std::string text = fmt::format("{}\n{} {}\n", castagnoli_ ? meta_magic_v2 : meta_magic_v1, consumed_.segment,
                                 consumed_.offset);
  // Written aside, fsynced, renamed over the old, the directory fsynced.
  std::string error = io::write_file_atomic(meta_path().string(), text);
  if (!error.empty()) return disk_status::fail(std::move(error));
  meta_written_ = consumed_;
  return {};
}

bool disk_queue::fill_read_buffer(std::size_t need, disk_status& status) {
  std::uint64_t have_end = read_buf_offset_ + read_buf_.size();
  if (read_.offset >= read_buf_offset_ && read_.offset + need <= have_end) return true;
  std::size_t want = std::max(need, read_chunk);
  read_buf_.resize(want);
  read_buf_offset_ = read_.offset;
  std::size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(read_fd_, read_buf_.data() + got, want - got, static_cast<off_t>(read_.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = sys_fail("reading", segment_path(read_.segment));
      read_buf_.clear();
      return false;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  read_buf_.resize(got);
  return got >= need;
}

void disk_queue::next_read_segment() {
  if (read_fd_ >= 0) ::close(read_fd_);
  read_fd_ = -1;
  read_buf_.clear();
  unread_.erase(read_.segment);
  read_ = {read_.segment + 1, 0};
  if (!manual_commit_) {
    consumed_ = read_;
    drop_consumed_segments();
  }
}

bool disk_queue::read(std::string& out, disk_status& status) {
  status = {};
  while (depth_ > 0) {
    std::uint64_t limit = read_.segment == write_.segment ? write_.offset : ~std::uint64_t{0};
    if (read_fd_ < 0 || read_fd_segment_ != read_.segment) {
      if (read_fd_ >= 0) ::close(read_fd_);
      read_buf_.clear();
      read_fd_ = ::open(segment_path(read_.segment).c_str(), O_RDONLY | O_CLOEXEC);
      read_fd_segment_ = read_.segment;
      if (read_fd_ < 0) {
        if (errno != ENOENT) {
          status = sys_fail("opening", segment_path(read_.segment));
          return false;
        }
        // No such segment (never written, or removed by hand): whatever it held is gone.
        depth_ -= std::min(depth_, unread_[read_.segment]);
        if (read_.segment >= write_.segment) return false;
        next_read_segment();
        continue;
      }
    }
    if (limit == ~std::uint64_t{0}) {
      if (read_limit_segment_ != read_.segment) {
        read_limit_ = file_size(read_fd_);
        read_limit_segment_ = read_.segment;
      }
      limit = read_limit_;
    }
    if (read_.offset >= limit) {
      if (read_.segment >= write_.segment) return false;
      next_read_segment();
      continue;
    }
    std::string bad;
    if (limit - read_.offset < header_size || !fill_read_buffer(header_size, status)) {
      bad = "torn record header";
    } else {
      const char* h = read_buf_.data() + (read_.offset - read_buf_offset_);
      std::uint32_t len = get_u32(h);
      if (len > options_.max_record_size || limit - read_.offset - header_size < len) {
        bad = "bad record length";
      } else if (!fill_read_buffer(header_size + len, status)) {
        bad = "short read";
      } else {
        h = read_buf_.data() + (read_.offset - read_buf_offset_);
        if (record_crc(castagnoli_, h, h + header_size, len) != get_u32(h + 4)) {
          bad = "checksum mismatch";
        } else {
          out.assign(h + header_size, len);
          read_.offset += header_size + len;
          --depth_;
          if (auto it = unread_.find(read_.segment); it != unread_.end() && it->second > 0) --it->second;
          if (!manual_commit_) consumed_ = read_;
          return true;
        }
      }
    }
    if (!status.ok()) return false;
    // Damaged after it was written (the recovery scan passed it): read on from where whole
    // records start again (the same search as the recovery scan), and say what was skipped.
    segment_reader r(read_fd_, limit, castagnoli_, options_.max_record_size);
    bool one_record = false;  // (the count below says how many records were lost either way)
    const std::uint64_t from = read_.offset;
    const std::uint64_t next = r.resync(from, one_record);
    std::uint64_t left = 0, end = 0;
    for (std::uint64_t off = next; off < limit && r.check(off, end).empty(); off = end) ++left;
    std::uint64_t& unread = unread_[read_.segment];
    const std::uint64_t lost = unread > left ? unread - left : 0;
    status = disk_status::fail(fmt::format("{}: {} at byte {}; {} bytes ({} record{}) skipped, reading on at byte {}",
                                           segment_path(read_.segment).string(), bad, from, next - from, lost,
                                           lost == 1 ? "" : "s", next));
    set_aside_bytes_ += next - from;
    depth_ -= std::min(depth_, lost);
    unread = std::min(unread, left);
    read_.offset = next;
    read_buf_.clear();
    read_buf_offset_ = next;
    if (!manual_commit_) consumed_ = read_;
    return false;
  }
  return false;
}

void disk_queue::commit(disk_position consumed) {
  consumed_ = consumed;
  drop_consumed_segments();
}

void disk_queue::drop_consumed_segments() {
  for (auto it = unread_.begin(); it != unread_.end() && it->first < consumed_.segment;) it = unread_.erase(it);
  while (first_segment_ < consumed_.segment && first_segment_ < write_.segment) {
    ::unlink(segment_path(first_segment_).c_str());
    ++first_segment_;
  }
}

disk_status disk_queue::empty() {
  close_files();
  pending_.clear();
  pending_records_ = 0;
  for (std::uint64_t s = std::min(first_segment_, consumed_.segment); s <= write_.segment; ++s)
    ::unlink(segment_path(s).c_str());
  write_ = read_ = consumed_ = {write_.segment + 1, 0};
  first_segment_ = write_.segment;
  pending_end_ = 0;
  depth_ = 0;
  since_sync_ = 0;
  data_dirty_ = false;
  unread_.clear();
  return write_meta();
}

disk_status disk_queue::close() {
  disk_status st = sync();
  close_files();
  return st;
}

void disk_queue::destroy() {
  close_files();
  pending_.clear();
  pending_records_ = 0;
  for (std::uint64_t s = std::min(first_segment_, consumed_.segment); s <= write_.segment; ++s)
    ::unlink(segment_path(s).c_str());
  ::unlink(meta_path().c_str());
}

void disk_queue::close_files() noexcept {
  if (write_fd_ >= 0) ::close(write_fd_);
  if (read_fd_ >= 0) ::close(read_fd_);
  write_fd_ = read_fd_ = -1;
  read_buf_.clear();
}

}  // namespace pipekit::broker
