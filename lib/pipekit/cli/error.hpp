#pragma once
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace pipekit {

// An error that ends the program with a given exit code (see exit_code.hpp).
// The message is printed as "<tool>: <message>"; it should name where (file, line, field).
class fatal_error : public std::runtime_error {
 public:
  fatal_error(int code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

template <class... Args>
[[noreturn]] void fatal(int code, fmt::format_string<Args...> format, Args&&... args) {
  throw fatal_error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pipekit
