#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/io/rejects.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::io {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t write_buffer = 64 * 1024;

}  // namespace

// ---- line_reader ----

line_reader::line_reader(const std::string& path, std::size_t max_line) : max_line_(max_line) {
  if (path == "-" || path.empty()) {
    fd_ = STDIN_FILENO;
    source_ = "stdin";
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fatal(exit_code::no_input, "{}: cannot open: {}", path, std::strerror(errno));
    owns_fd_ = true;
    source_ = path;
  }
  buf_.reserve(read_chunk * 2);
}

line_reader::~line_reader() {
  if (owns_fd_) ::close(fd_);
}

bool line_reader::wait_for_input() {
  pollfd p[2] = {{wake_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};
  for (;;) {
    int rc = ::poll(p, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) fatal(exit_code::io_error, "{}: poll: {}", source_, std::strerror(errno));
    if (p[0].revents != 0) return false;  // checked first: a regular file is always readable
    return true;
  }
}

bool line_reader::fill() {
  if (eof_ || stopped_) return false;
  if (on_refill_) on_refill_();
  if (wake_fd_ >= 0 && !wait_for_input()) {
    stopped_ = true;
    return false;
  }
  if (start_ > 0) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  const std::size_t old = buf_.size();
  buf_.resize(old + read_chunk);
  for (;;) {
    ssize_t n = ::read(fd_, buf_.data() + old, read_chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      buf_.resize(old);
      fatal(exit_code::io_error, "{}: read error: {}", source_, std::strerror(err));
    }
    buf_.resize(old + static_cast<std::size_t>(n));
    if (n == 0) eof_ = true;
    return n > 0;
  }
}

std::optional<line> line_reader::next() {
  std::size_t scanned = start_;
  bool skipping = false;  // inside a line that is too long: drop bytes up to its end
  for (;;) {
    const char* base = buf_.data();
    const void* nl = std::memchr(base + scanned, '\n', buf_.size() - scanned);
    if (nl != nullptr) {
      std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
      std::size_t begin = start_;
      start_ = end + 1;
      ++number_;
      if (skipping || end - begin > max_line_) return line{{}, number_, true};
      if (end > begin && base[end - 1] == '\r') --end;
      return line{std::string_view(base + begin, end - begin), number_, false, buf_.size() - end};
    }
    if (buf_.size() - start_ > max_line_) {
      // Keep nothing of an over-long line; remember to drop the rest of it.
      skipping = true;
      start_ = buf_.size();
    }
    scanned = buf_.size() - start_;
    if (!fill()) {
      scanned = 0;
      if (stopped_ || (start_ >= buf_.size() && !skipping)) return std::nullopt;
      // A last line without "\n" is still a line.
      std::size_t begin = start_;
      std::size_t end = buf_.size();
      start_ = end;
      ++number_;
      if (skipping) return line{{}, number_, true};
      if (end > begin && buf_[end - 1] == '\r') --end;
      return line{std::string_view(buf_.data() + begin, end - begin), number_, false};
    }
    scanned += start_;
  }
}

// ---- line_writer ----

namespace {
bool is_pipe_or_tty(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return true;
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode);
}
}  // namespace

line_writer::line_writer(int fd) : fd_(fd), per_line_(is_pipe_or_tty(fd)), name_("stdout") {
  buf_.reserve(write_buffer);
}

line_writer::line_writer(const std::string& path) : line_writer(STDOUT_FILENO) {
  if (path == "-") return;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fatal(exit_code::io_error, "{}: cannot open for writing: {}", path, std::strerror(errno));
  owns_fd_ = true;
  name_ = path;
  per_line_ = is_pipe_or_tty(fd_);
}

line_writer::~line_writer() {
  try {
    flush();
  } catch (const std::exception& e) {
    log::error("{}", e.what());
  }
  if (owns_fd_) ::close(fd_);
}

bool line_writer::write_line(std::string_view text) {
  if (closed_) return false;
  buf_.append(text);
  buf_.push_back('\n');
  if (per_line_ || buf_.size() >= write_buffer) return flush();
  return true;
}

bool line_writer::flush() {
  std::size_t done = 0;
  while (done < buf_.size() && !closed_) {
    ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) {
        closed_ = true;
        break;
      }
      int err = errno;
      buf_.clear();
      fatal(exit_code::io_error, "{}: write error: {}", name_, std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  buf_.clear();
  return !closed_;
}

// ---- rejects ----

rejects::rejects() = default;
rejects::rejects(const std::string& path) : own_(std::make_unique<line_writer>(path)), out_(own_.get()) {}
rejects::rejects(line_writer& shared) : out_(&shared) {}
rejects::rejects(rejects&&) noexcept = default;
rejects::~rejects() = default;

bool rejects::add(std::string_view source, std::uint64_t line, std::string_view code, std::string_view error,
                  std::string_view input) {
  ++count_;
  log::error("{}:{}: {}", source, line, error);
  if (!out_) return true;
  // Keys in the documented order: source, line, code, error, input.
  nlohmann::ordered_json rec = {
      {"source", source}, {"line", line}, {"code", code}, {"error", error}, {"input", input},
  };
  return out_->write_line(rec.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void rejects::flush() {
  if (out_) out_->flush();
}

}  // namespace pipekit::io
