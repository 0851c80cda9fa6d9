#include "pipekit/log/log.hpp"
#include "pipekit/log/escape.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "pipekit/util/utf8.hpp"

namespace pipekit::log {
namespace {

struct state {
  std::string tool = "pipekit";
  std::atomic<level> min{level::info};  // set_min_level may change it while others log
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

bool plain(unsigned char c) { return c >= 0x20 && c < 0x7F; }

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (plain(c)) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c >= 0x80) {
      // A valid character, but not a C1 control (U+0080..U+009F: C2 80..C2 9F), which is escaped.
      const std::size_t n = util::utf8_char_length(text.substr(i));
      if (n > 0 && !(c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0)) {
        out.append(text.substr(i, n));
        i += n;
        continue;
      }
    }
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += fmt::format("\\x{:02x}", c);
    ++i;
  }
  return out;
}

void configure(std::string_view tool, level min_level, format fmt) {
  auto& s = global();
  std::lock_guard lock(s.mutex);
  s.tool = tool;
  s.min = min_level;
  s.fmt = fmt;
}

level min_level() noexcept { return global().min; }
void set_min_level(level min_level) noexcept { global().min = min_level; }
bool enabled(level l) noexcept { return l >= global().min && l != level::off; }
std::string_view tool_name() noexcept { return global().tool; }

void write(level l, std::string_view raw) {
  auto& s = global();
  const bool clean = std::all_of(raw.begin(), raw.end(), [](char c) { return plain(static_cast<unsigned char>(c)); });
  std::string escaped = clean ? std::string() : escape(raw);
  std::string_view message = clean ? raw : std::string_view(escaped);
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
