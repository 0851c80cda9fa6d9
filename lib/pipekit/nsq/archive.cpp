#include "pipekit/nsq/archive.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::nsq {
namespace {

std::string short_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  std::string h(name);
  return h.substr(0, h.find('.'));
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

[[noreturn]] void io_fail(const std::string& what, const std::string& path) {
  throw fatal_error(exit_code::io_error, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

struct archive_writer::zstate {
  z_stream s{};
  bool active = false;
  std::string out;
};

archive_writer::archive_writer(archive_options options) : o_(std::move(options)), z_(std::make_unique<zstate>()) {
  if (::mkdir(o_.dir.c_str(), 0755) != 0 && errno != EEXIST) io_fail("creating", o_.dir);
}

archive_writer::~archive_writer() {
  try {
    close();
  } catch (const std::exception& e) {
    log::error("{}", e.what());
  }
}

void archive_writer::open() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char datetime[64];
  std::strftime(datetime, sizeof datetime, "%Y-%m-%d_%H", &tm);
  std::string base = o_.filename_format;
  replace_all(base, "<TOPIC>", o_.topic);
  replace_all(base, "<HOST>", short_hostname());
  replace_all(base, "<DATETIME>", datetime);
  if (o_.gzip && !(base.size() > 3 && base.ends_with(".gz"))) base += ".gz";
  for (int rev = 0;; ++rev) {
    std::string name = base;
    replace_all(name, "<REV>", rev == 0 ? std::string() : fmt::format("-{}", rev));
    final_path_ = o_.dir + "/" + name;
    temp_path_ = final_path_ + ".tmp";
    if (!exists(final_path_) && !exists(temp_path_)) break;
    if (base.find("<REV>") == std::string::npos) {
      throw fatal_error(exit_code::io_error,
                        fmt::format("{} exists and --filename-format has no <REV> to pick another name", final_path_));
    }
  }
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail("creating", temp_path_);
  size_ = 0;
  failed_ = false;
  opened_ = std::chrono::steady_clock::now();
  tm.tm_min = 0;
  tm.tm_sec = 0;
  next_hour_ = std::chrono::system_clock::from_time_t(::timegm(&tm)) + std::chrono::hours(1);
  if (o_.gzip) {
    z_->s = z_stream{};
    if (deflateInit2(&z_->s, o_.gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw fatal_error(exit_code::software, "gzip: deflateInit2 failed");
    }
    z_->active = true;
  }
  log::debug("archive: writing {}", temp_path_);
}

void archive_writer::fail(const char* what) {
  failed_ = true;
  io_fail(what, temp_path_);
}

void archive_writer::write_raw(const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

void archive_writer::deflate_out(int flush, std::string_view in) {
  auto& s = z_->s;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  z_->out.resize(64 * 1024);
  do {
    s.next_out = reinterpret_cast<Bytef*>(z_->out.data());
    s.avail_out = static_cast<uInt>(z_->out.size());
    int rc = ::deflate(&s, flush);
    if (rc == Z_STREAM_ERROR) throw fatal_error(exit_code::software, "gzip: deflate failed");
    write_raw(z_->out.data(), z_->out.size() - s.avail_out);
  } while (s.avail_out == 0 || s.avail_in > 0);
}

void archive_writer::write(std::string_view data) {
  if (data.empty()) return;
  if (fd_ < 0) open();
  size_ += data.size();
  if (z_->active) deflate_out(Z_NO_FLUSH, data);
  else write_raw(data.data(), data.size());
}

bool archive_writer::rotation_due(std::uint64_t buffered) const {
  if (fd_ < 0 && buffered == 0) return false;
  if (o_.rotate_size > 0 && size_ + buffered >= o_.rotate_size) return true;
  if (fd_ < 0) return false;
  if (o_.rotate_interval.count() > 0 && std::chrono::steady_clock::now() - opened_ >= o_.rotate_interval) return true;
  return o_.filename_format.find("<DATETIME>") != std::string::npos && std::chrono::system_clock::now() >= next_hour_;
}

void archive_writer::sync() {
  if (fd_ < 0) return;
  if (z_->active) deflate_out(Z_SYNC_FLUSH, {});
  if (::fdatasync(fd_) != 0) fail("syncing");
}

void archive_writer::close() {
  if (fd_ < 0) return;
  if (failed_) {
    // Torn: a downstream reader must not take it for complete. What it holds that was synced was
    // FINished; the rest was not, and comes again.
    if (z_->active) deflateEnd(&z_->s);
    z_->active = false;
    ::close(fd_);
    fd_ = -1;
    size_ = 0;
    log::error("archive: {} is incomplete (a write or sync failed); left under that name", temp_path_);
    return;
  }
  if (z_->active) {
    deflate_out(Z_FINISH, {});
    deflateEnd(&z_->s);
    z_->active = false;
  }
  if (::fsync(fd_) != 0) fail("syncing");
  ::close(fd_);
  fd_ = -1;
  size_ = 0;
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) io_fail("renaming", temp_path_);
  int dfd = ::open(o_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  log::info("archive: {} complete", final_path_);
}

}  // namespace pipekit::nsq
