#pragma once
#include <string_view>
#include <utility>

#include <fmt/format.h>

// One logger for every program: stderr, human text by default or one JSON object per line.
// Format strings are checked at compile time by fmt.
namespace pipekit::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
enum class format { text, json };

// Set once at start-up by cli::run_main from the shared flags.
void configure(std::string_view tool, level min_level, format fmt);
level min_level() noexcept;
void set_min_level(level min_level) noexcept;  // e.g. nsq-broker's PUT /config/log_level
bool enabled(level l) noexcept;
std::string_view tool_name() noexcept;

// Writes one record (already formatted) if its level is enabled. Thread-safe.
void write(level l, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::debug)) write(level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::info)) write(level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::warn)) write(level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::error)) write(level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace pipekit::log
