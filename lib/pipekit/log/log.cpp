#include "pipekit/log/log.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace pipekit::log {
namespace {

struct state {
  std::string tool = "pipekit";
  level min = level::info;
  format fmt = format::text;
  std::mutex mutex;
};

state& global() {
  static state s;
  return s;
}

std::string_view level_name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warning";
    case level::error: return "error";
    case level::off: break;
  }
  return "off";
}

// RFC 3339 UTC with milliseconds: 2026-11-28T01:02:03.456Z
std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

void write_all(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr is gone: nothing sensible left to report to
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

void configure(std::string_view tool, level min_level, format fmt) {
  auto& s = global();
  std::lock_guard lock(s.mutex);
  s.tool = tool;
  s.min = min_level;
  s.fmt = fmt;
}

level min_level() noexcept { return global().min; }
bool enabled(level l) noexcept { return l >= global().min && l != level::off; }
std::string_view tool_name() noexcept { return global().tool; }

void write(level l, std::string_view message) {
  auto& s = global();
  std::string line;
  if (s.fmt == format::json) {
    nlohmann::json rec = {
        {"ts", timestamp()},
        {"level", level_name(l)},
        {"tool", s.tool},
        {"msg", message},
    };
    line = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (l == level::info || l == level::error) {
    // Errors read as "<tool>: <where>: <what>", the house message format.
    line = fmt::format("{}: {}", s.tool, message);
  } else {
    line = fmt::format("{}: {}: {}", s.tool, level_name(l), message);
  }
  line += '\n';
  std::lock_guard lock(s.mutex);
  write_all(line);
}

}  // namespace pipekit::log
