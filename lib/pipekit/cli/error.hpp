#pragma once
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "pipekit/cli/exit_code.hpp"

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

// Options a library was given that it cannot use, named as the library's options name them
// (data_path, auth_http_address: the peer tool's flag names in snake case), never as a command
// line spells them, so daemons and bindings use the library without a CLI. `message` holds one
// {} per name in `options`, in order. what() fills them with the names; cli::run_main fills them
// with the flags ("--data-path") and exits with the kind's code, so a library need not know
// either: usage (a required option missing, a value the option cannot take) 64; no_input (a file
// an option names cannot be read) 66; unavailable (an address an option names cannot be bound)
// 69; config (options that do not go together, a value that cannot be used) 78; io (a directory
// or file an option names cannot be made or written) 74.
class option_error : public std::runtime_error {
 public:
  enum class kind { usage, no_input, unavailable, config, io };

  option_error(kind k, std::vector<std::string> options, std::string message)
      : std::runtime_error(render(message, options, [](const std::string& o) { return o; })),
        kind_(k),
        options_(std::move(options)),
        message_(std::move(message)) {}
  kind error_kind() const noexcept { return kind_; }
  const std::vector<std::string>& options() const noexcept { return options_; }
  // The message with each {} replaced by name(option), in order.
  template <class Name>
  std::string with_names(Name&& name) const {
    return render(message_, options_, name);
  }

 private:
  template <class Name>
  static std::string render(const std::string& message, const std::vector<std::string>& options, Name&& name) {
    std::string out;
    std::size_t next = 0, from = 0;
    for (std::size_t at; (at = message.find("{}", from)) != std::string::npos; from = at + 2) {
      out.append(message, from, at - from);
      out += next < options.size() ? name(options[next++]) : std::string("{}");
    }
    out.append(message, from);
    return out;
  }

  kind kind_;
  std::vector<std::string> options_;
  std::string message_;
};

// The exit code of an option_error's kind.
inline int exit_code_of(const option_error& e) noexcept {
  switch (e.error_kind()) {
    case option_error::kind::usage: return exit_code::usage;
    case option_error::kind::no_input: return exit_code::no_input;
    case option_error::kind::unavailable: return exit_code::unavailable;
    case option_error::kind::io: return exit_code::io_error;
    case option_error::kind::config: break;
  }
  return exit_code::config;
}

}  // namespace pipekit
