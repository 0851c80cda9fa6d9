#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace CLI {
class App;
class Option;
class Validator;
}

// The one catch-all every program's main() ends in, and the flag groups programs share.
namespace pipekit::cli {

struct log_flags {
  int verbose = 0;
  int quiet = 0;
  std::string log_format = "text";
};

// -v/--verbose, -q/--quiet, --log-format text|json.
void add_log_flags(CLI::App& app, log_flags& flags);

// --config FILE for daemons: flags from a TOML file as nsqd and nsqlookupd read theirs, keys
// named as the flags with '_' for '-' (tcp_address = "0.0.0.0:4160"; the dashed names work too).
// Flags on the command line win over the file; keys that name no flag are logged and ignored (nsq
// ignores them: an nsqd config file stays usable). A missing or unreadable file, one that is not
// TOML, an array or table where one value goes, or a value the flag refuses ends the program with
// exit_code::config (78) and "<tool>: --config FILE:LINE: why".
void add_config_flag(CLI::App& app);

// A Go-style duration flag ("250ms", "30s", "1h30m", as nsq's flags take) read into target as
// milliseconds; a bad value is a usage error (64) naming the flag. --help shows target's value at
// the call as the default.
CLI::Option* add_duration_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                 const std::string& help);
// A flag that takes a whole number from min to max, checked on the text (a value past int64 is out
// of range, never wrapped or saturated): "--max-msg-size 4294967370: want a whole number from 1 to
// 2147483647". Long input is shortened in the message.
CLI::Validator whole_number(std::int64_t min, std::int64_t max);

// "250ms", "30s", "5m", "1h": how such defaults are written.
std::string format_duration(std::chrono::milliseconds d);

// A secret never comes from argv: from `file` when given (one trailing newline stripped; an
// unreadable file exits 66 naming it, an empty one or one over 64 KiB 65), else from the environment variable `env`,
// else "". `flag` names the file's flag in messages.
std::string read_secret(const std::string& file, const char* env, std::string_view flag);

// Sets up the program's name, --version (name, version, git commit) and the hidden
// --completions=bash|zsh|fish|flags that prints completions generated from the flag tree.
void init_app(CLI::App& app, std::string_view tool);

// Parses argv, configures logging, ignores SIGPIPE and calls run(). The only catch-all:
//   --help/--version/--completions -> stdout, 0;  parse errors -> stderr with a hint, 64;
//   pipekit::fatal_error -> "<tool>: <message>", its code;  anything else -> "internal error", 70.
int run_main(CLI::App& app, const log_flags& log, int argc, char** argv, const std::function<int()>& run);

// The flag that sets a library option: "data_path" -> "--data-path" (option_error's names; the
// options structs name their members after the flags).
std::string flag_of_option(const std::string& option);

std::string version_string(std::string_view tool);

// Completion scripts and the flat flag list, generated from the CLI11 tree.
// shell is "bash", "zsh", "fish" or "flags" (one line per (sub)command: "<path>: --a -b ...").
std::string completions(const CLI::App& app, std::string_view shell);

}  // namespace pipekit::cli
