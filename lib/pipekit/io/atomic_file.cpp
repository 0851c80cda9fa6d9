#include "pipekit/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace pipekit::io {
namespace {

std::string failed(std::string_view what, const std::string& file, int err) {
  return fmt::format("cannot {} {}: {}", what, file, std::strerror(err));
}

std::string write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t w = ::write(fd, text.data(), text.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return std::strerror(errno);
    text.remove_prefix(static_cast<std::size_t>(w));
  }
  return {};
}

// Makes the rename itself durable. Best effort: some filesystems cannot fsync a directory.
void sync_parent(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string write_file_atomic(const std::string& path, std::string_view text) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed("create", tmp, errno);
  std::string error = write_all(fd, text);
  if (error.empty() && ::fsync(fd) != 0) error = std::strerror(errno);
  if (::close(fd) != 0 && error.empty()) error = std::strerror(errno);
  if (!error.empty()) {
    ::unlink(tmp.c_str());
    return fmt::format("cannot write {}: {}", tmp, error);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return failed("replace", path, err);
  }
  sync_parent(path);
  return {};
}

}  // namespace pipekit::io
