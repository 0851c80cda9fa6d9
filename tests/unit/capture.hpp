#pragma once
// Captures what a piece of code writes to a file descriptor (stdout or stderr) in-process.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace pipekit::test {

class fd_capture {
 public:
  explicit fd_capture(int fd) : fd_(fd) {
    std::fflush(nullptr);
    char name[] = "/tmp/pipekit-capture-XXXXXX";
    tmp_ = ::mkstemp(name);
    path_ = name;
    saved_ = ::dup(fd_);
    ::dup2(tmp_, fd_);
  }
  ~fd_capture() { restore(); ::unlink(path_.c_str()); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(nullptr);
    ::dup2(saved_, fd_);
    ::close(saved_);
    ::close(tmp_);
    saved_ = -1;
  }
  int fd_;
  int tmp_ = -1;
  int saved_ = -1;
  std::string path_;
};

}  // namespace pipekit::test
