#include "pipekit/cli/app.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

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

// --config: the file is parsed as TOML by toml++ (CLI11's own reader takes any text), keys spelled
// as nsq spells them (tcp_address means --tcp-address). What is wrong is a CLI::ConfigError saying
// "FILE:LINE: why"; where CLI11 later finds a value it cannot use, where() names the line.
class toml_config : public CLI::ConfigTOML {
 public:
  explicit toml_config(const CLI::App& app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    file_ = app_.get_config_ptr() ? app_.get_config_ptr()->as<std::string>() : std::string("--config");
    std::string text((std::istreambuf_iterator<char>(input)), std::istreambuf_iterator<char>());
    toml::table table;
    try {
      table = toml::parse(text, file_);
    } catch (const toml::parse_error& e) {
      throw CLI::ConfigError(fmt::format("{}:{}:{}: not TOML: {}", file_, e.source().begin.line,
                                         e.source().begin.column, e.description()));
    }
    std::vector<CLI::ConfigItem> read;
    for (auto&& [key, node] : table) {
      std::string name(key.str());
      if (name.size() > 1) std::replace(name.begin(), name.end(), '_', '-');
      const auto line = node.source().begin.line;
      const CLI::Option* opt = name == "config" ? nullptr : app_.get_option_no_throw("--" + name);
      if (!opt) {
        // nsqd's and nsqlookupd's files may hold keys for flags this program lacks: said, not fatal.
        log::warn("--config {}:{}: {} is not a flag of {}; ignored", file_, line, key.str(), app_.get_name());
        continue;
      }
      CLI::ConfigItem item;
      item.name = name;
      auto fail = [&](std::string_view why) {
        return CLI::ConfigError(fmt::format("{}:{}: {}: {}", file_, line, key.str(), why));
      };
      if (const toml::array* list = node.as_array()) {
        if (opt->get_items_expected_max() <= 1) throw fail("takes one value, not an array");
        for (const toml::node& element : *list) item.inputs.push_back(scalar(element, fail));
      } else {
        item.inputs.push_back(scalar(node, fail));
      }
      lines_[name] = line;
      read.push_back(std::move(item));
    }
    return read;
  }

  // "FILE:LINE" of the key whose value a CLI11 error `what` is about, when that value came from
  // the file (a flag on the command line wins over the file); empty otherwise.
  std::string where(std::string_view what, int argc, char** argv) const {
    for (const auto& [name, line] : lines_) {
      const std::string flag = "--" + name;
      bool on_command_line = false;
      for (int i = 1; i < argc; ++i) {
        std::string_view a(argv[i]);
        on_command_line = on_command_line || a == flag || a.starts_with(flag + "=");
      }
      for (auto at = what.find(name); !on_command_line && at != std::string_view::npos; at = what.find(name, at + 1)) {
        const auto after = at + name.size();
        const bool word_end = after == what.size() || !(std::isalnum(static_cast<unsigned char>(what[after])) || what[after] == '-');
        const bool word_start = at == 0 || !std::isalnum(static_cast<unsigned char>(what[at - 1]));
        if (word_start && word_end) return fmt::format("{}:{}", file_, line);
      }
    }
    return {};
  }

 private:
  // One TOML value as CLI11 takes it: strings as they are, numbers and booleans spelled out.
  template <class Fail>
  static std::string scalar(const toml::node& n, const Fail& fail) {
    if (const auto* s = n.as_string()) return s->get();
    if (const auto* i = n.as_integer()) return std::to_string(i->get());
    if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
    if (const auto* f = n.as_floating_point()) return fmt::format("{}", f->get());
    const char* type = n.is_table() ? "table" : n.is_array() ? "array" : n.is_date_time() ? "date-time"
                       : n.is_date()  ? "date"  : "time";
    throw fail(fmt::format("a TOML {} is not a flag value", type));
  }

  const CLI::App& app_;
  mutable std::string file_;
  mutable std::map<std::string, std::int64_t> lines_;
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
  app.config_formatter(std::make_shared<toml_config>(app));
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

std::string flag_of_option(const std::string& option) {
  std::string flag = "--" + option;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
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
      std::fprintf(stderr, "%s: --config %s\n", tool.c_str(), shorten_numbers(e.what()).c_str());
      return exit_code::config;
    } catch (const CLI::ParseError& e) {
      // A value from --config that CLI11 cannot use: the file's fault (78), at its line.
      if (auto config = std::dynamic_pointer_cast<toml_config>(app.get_config_formatter_base())) {
        if (std::string where = config->where(e.what(), argc, argv); !where.empty()) {
          std::fprintf(stderr, "%s: --config %s: %s\n", tool.c_str(), where.c_str(), shorten_numbers(e.what()).c_str());
          return exit_code::config;
        }
      }
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
  } catch (const option_error& e) {
    log::error("{}", e.with_names(flag_of_option));
    return exit_code_of(e);
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
