#include "pipekit/cli/app.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/read_file.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"
#include "pipekit_version.hpp"

namespace pipekit::cli {
namespace {

constexpr std::size_t max_secret_file = 64 * 1024;  // --*-secret-file, --*-password-file

// Thrown by the hidden --completions flag as soon as it is parsed.
struct completions_requested {
  std::string shell;
};

// Help, version and completions: a reader that went away (EPIPE) is no error, as for data.
int write_stdout(std::string_view text) {
  bool ok = std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0;
  return ok || errno == EPIPE ? exit_code::ok : exit_code::io_error;
}

// CLI11's TOML reader with nsq's key spelling: tcp_address means --tcp-address.
class underscore_toml : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto read = CLI::ConfigTOML::from_config(input);
    for (auto& item : read)
      if (item.name.size() > 1) std::replace(item.name.begin(), item.name.end(), '_', '-');
    return read;
  }
};

// Runs of more than 24 digits (a pasted 300-digit number) cut to their first 20 in messages.
std::string shorten_numbers(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i) {
      out += text[i++];
      continue;
    }
    if (j - i > 24) out.append(text.substr(i, 20)).append(fmt::format("...({} digits)", j - i));
    else out.append(text.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

CLI::Validator whole_number(std::int64_t min, std::int64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        std::int64_t v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size() && v >= min && v <= max) return {};
        return shorten_numbers(fmt::format("{}: want a whole number from {} to {}", text, min, max));
      },
      fmt::format("INT in [{} - {}]", min, max));
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

CLI::Option* add_duration_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                 const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [&target, name](const std::string& text) {
            try {
              target = std::chrono::duration_cast<std::chrono::milliseconds>(util::parse_duration(text));
            } catch (const std::invalid_argument& e) {
              throw CLI::ValidationError(name, fmt::format("{}: {}", text, e.what()));
            }
          },
          help)
      ->type_name("DURATION")
      ->default_str(format_duration(target));
}

void add_config_flag(CLI::App& app) {
  app.config_formatter(std::make_shared<underscore_toml>());
  app.set_config("--config", "", "Read flags from a TOML file (nsqlookupd/nsqd style: tcp_address = \"...\")")
      ->type_name("FILE");
}

std::string version_string(std::string_view tool) {
  return fmt::format("{} {} (pipekit, commit {})", tool, PIPEKIT_VERSION, PIPEKIT_GIT_COMMIT);
}

void add_log_flags(CLI::App& app, log_flags& flags) {
  app.add_flag("-v,--verbose", flags.verbose, "More log output on stderr (debug)");
  app.add_flag("-q,--quiet", flags.quiet, "Less log output on stderr (errors only)");
  app.add_option("--log-format", flags.log_format, "Log format on stderr")
      ->check(CLI::IsMember({"text", "json"}))
      ->type_name("text|json")
      ->capture_default_str();
}

void init_app(CLI::App& app, std::string_view tool) {
  app.name(std::string(tool));
  app.set_version_flag("--version", version_string(tool), "Print name, version and git commit, then exit");
  app.set_help_flag("-h,--help", "Print this help, then exit");
  app.add_option_function<std::string>(
         "--completions", [](const std::string& shell) { throw completions_requested{shell}; },
         "Print a completion script (bash, zsh, fish) or the flag list (flags), then exit")
      ->check(CLI::IsMember({"bash", "zsh", "fish", "flags"}))
      ->trigger_on_parse()
      ->group("");  // hidden
}

int run_main(CLI::App& app, const log_flags& log_opts, int argc, char** argv, const std::function<int()>& run) {
  // Writes to a closed pipe must come back as EPIPE, never kill the process.
  util::ignore_sigpipe();
  const std::string tool = app.get_name();
  log::configure(tool, log::level::info, log::format::text);
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      return write_stdout(app.help());
    } catch (const CLI::CallForAllHelp&) {
      return write_stdout(app.help("", CLI::AppFormatMode::All));
    } catch (const CLI::CallForVersion& e) {
      return write_stdout(std::string(e.what()) + "\n");
    } catch (const CLI::FileError& e) {
      std::fprintf(stderr, "%s: --config: %s\n", tool.c_str(), shorten_numbers(e.what()).c_str());
      return exit_code::config;
    } catch (const CLI::ConfigError& e) {
      std::fprintf(stderr, "%s: --config: %s\n", tool.c_str(), shorten_numbers(e.what()).c_str());
      return exit_code::config;
    } catch (const CLI::ParseError& e) {
      // Help for a subcommand arrives as CallForHelp too; anything else is a usage error.
      std::fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", tool.c_str(), shorten_numbers(e.what()).c_str(),
                   tool.c_str());
      return exit_code::usage;
    } catch (const completions_requested& c) {
      return write_stdout(completions(app, c.shell));
    }
    auto level = log::level::info;
    if (log_opts.quiet > 0) level = log::level::error;
    if (log_opts.verbose > 0) level = log::level::debug;
    log::configure(tool, level, log_opts.log_format == "json" ? log::format::json : log::format::text);
    return run();
  } catch (const fatal_error& e) {
    log::error("{}", e.what());
    return e.code();
  } catch (const std::exception& e) {
    log::error("internal error: {}", e.what());
    return exit_code::software;
  } catch (...) {
    log::error("internal error: unknown exception");
    return exit_code::software;
  }
}

std::string read_secret(const std::string& file, const char* env, std::string_view flag) {
  if (!file.empty()) {
    std::string s;
    try {
      s = io::read_file(file, max_secret_file);
    } catch (const io::file_error& e) {
      fatal(e.code(), "{} {}: {}", flag, file, e.what());
    }
    if (!s.empty() && s.back() == '\n') s.pop_back();
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (s.empty()) fatal(exit_code::data_error, "{} {}: the file is empty", flag, file);
    return s;
  }
  const char* v = std::getenv(env);
  return v ? std::string(v) : std::string();
}

}  // namespace pipekit::cli
