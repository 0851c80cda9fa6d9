#include "pipekit/io/read_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "pipekit/cli/exit_code.hpp"

namespace pipekit::io {

bool file_error::too_large() const noexcept { return code_ == exit_code::data_error; }
namespace {

// An open file, closed when it goes.
class open_file {
 public:
  explicit open_file(const std::string& path) {
    // O_NONBLOCK only keeps open() of a FIFO without a writer from hanging; reads block again.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) throw file_error(exit_code::no_input, fmt::format("cannot open: {}", std::strerror(errno)));
    if (::fstat(fd_, &st_) == 0 && S_ISDIR(st_.st_mode)) {
      ::close(fd_);
      throw file_error(exit_code::no_input, "is a directory");
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  }
  ~open_file() { ::close(fd_); }
  open_file(const open_file&) = delete;
  open_file& operator=(const open_file&) = delete;

  // The size of a regular file, else 0.
  std::size_t size_hint() const { return S_ISREG(st_.st_mode) ? static_cast<std::size_t>(st_.st_size) : 0; }

  // Fills buf[from, cap) as far as the file goes; returns the new fill.
  std::size_t read_into(char* buf, std::size_t from, std::size_t cap) {
    while (from < cap) {
      ssize_t r = ::read(fd_, buf + from, cap - from);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw file_error(exit_code::no_input, fmt::format("cannot read: {}", std::strerror(errno)));
      if (r == 0) break;
      from += static_cast<std::size_t>(r);
    }
    return from;
  }

 private:
  int fd_ = -1;
  struct stat st_ {};
};

[[noreturn]] void too_large(std::size_t max_bytes) {
  throw file_error(exit_code::data_error, fmt::format("larger than {} bytes", max_bytes));
}

}  // namespace

std::string read_file(const std::string& path, std::size_t max_bytes) {
  open_file f(path);
  // One byte more than the bound is asked for: a larger file shows itself without being read
  // further. The buffer grows as the file comes (most files are far below the bound).
  std::string text;
  std::size_t cap = std::min(std::max<std::size_t>(f.size_hint(), 64 * 1024), max_bytes) + 1;
  std::size_t n = 0;
  for (;;) {
    text.resize(cap);
    n = f.read_into(text.data(), n, cap);
    if (n < cap) break;
    if (n > max_bytes) too_large(max_bytes);
    cap = std::min(cap * 2, max_bytes + 1);
  }
  text.resize(n);
  return text;
}

void read_file(const std::string& path, std::size_t max_bytes, std::vector<std::uint8_t>& out) {
  open_file f(path);
  out.assign(max_bytes + 1, 0);
  std::size_t n = f.read_into(reinterpret_cast<char*>(out.data()), 0, out.size());
  if (n > max_bytes) too_large(max_bytes);
  out.resize(n);  // shrinking never reallocates
}

}  // namespace pipekit::io
