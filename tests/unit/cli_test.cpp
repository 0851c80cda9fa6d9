#include <catch2/catch.hpp>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <stdexcept>
#include <vector>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "unit/capture.hpp"

namespace {

struct harness {
  CLI::App app{"A test program."};
  pipekit::cli::log_flags log;
  std::string name;
  int count = 0;
  harness() {
    pipekit::cli::init_app(app, "demo");
    pipekit::cli::add_log_flags(app, log);
    auto* sub = app.add_subcommand("greet", "Say hello");
    sub->add_option("--name", name, "Who to greet")->type_name("NAME");
    sub->add_option("--count", count, "How often");
  }
  int run(std::vector<std::string> args, const std::function<int()>& body) {
    std::vector<char*> argv{const_cast<char*>("demo")};
    for (auto& a : args) argv.push_back(a.data());
    return pipekit::cli::run_main(app, log, static_cast<int>(argv.size()), argv.data(), body);
  }
};

}  // namespace

TEST_CASE("run_main maps outcomes to exit codes", "[cli]") {
  using namespace pipekit;
  SECTION("success runs the body") {
    harness h;
    CHECK(h.run({"greet", "--name", "ann"}, [&] { return h.name == "ann" ? 0 : 1; }) == exit_code::ok);
  }
  SECTION("a parse error is a usage error with a hint on stderr") {
    harness h;
    test::fd_capture err(2);
    CHECK(h.run({"greet", "--count", "many"}, [] { return 0; }) == exit_code::usage);
    auto text = err.text();
    CHECK_THAT(text, Catch::Contains("demo: "));
    CHECK_THAT(text, Catch::Contains("Run 'demo --help'"));
  }
  SECTION("an unknown flag is a usage error") {
    harness h;
    test::fd_capture err(2);
    CHECK(h.run({"--bogus"}, [] { return 0; }) == exit_code::usage);
  }
  SECTION("--help and --version go to stdout with 0") {
    harness h;
    test::fd_capture out(1);
    CHECK(h.run({"--help"}, [] { return 9; }) == exit_code::ok);
    CHECK_THAT(out.text(), Catch::Contains("A test program."));
    harness v;
    test::fd_capture out2(1);
    CHECK(v.run({"--version"}, [] { return 9; }) == exit_code::ok);
    auto text = out2.text();
    CHECK_THAT(text, Catch::StartsWith("demo "));
    CHECK_THAT(text, Catch::Contains("commit "));
  }
  SECTION("a typed fatal error carries its code and message") {
    harness h;
    test::fd_capture err(2);
    CHECK(h.run({}, [] () -> int { fatal(exit_code::no_input, "{}: cannot open", "x.abi"); }) == exit_code::no_input);
    CHECK(err.text() == "demo: x.abi: cannot open\n");
  }
  SECTION("a library's option error names the flags: 78 for config, 74 for io") {
    harness h;
    test::fd_capture err(2);
    const option_error conflict(option_error::kind::config, {"durable", "data_path"}, "{} needs {}");
    CHECK(std::string(conflict.what()) == "durable needs data_path");  // what a library user sees
    CHECK(h.run({}, [&]() -> int { throw conflict; }) == exit_code::config);
    CHECK(err.text() == "demo: --durable needs --data-path\n");
    harness h2;
    test::fd_capture err2(2);
    CHECK(h2.run({}, []() -> int { throw option_error(option_error::kind::io, {"data_path"}, "{} /x: denied"); }) ==
          exit_code::io_error);
    CHECK(err2.text() == "demo: --data-path /x: denied\n");
  }
  SECTION("anything else is an internal error, 70") {
    harness h;
    test::fd_capture err(2);
    CHECK(h.run({}, [] () -> int { throw std::logic_error("boom"); }) == exit_code::software);
    CHECK_THAT(err.text(), Catch::Contains("internal error: boom"));
  }
  SECTION("--log-format json makes log records JSON") {
    harness h;
    test::fd_capture err(2);
    CHECK(h.run({"--log-format", "json"}, [] () -> int { fatal(exit_code::config, "bad"); }) == exit_code::config);
    auto text = err.text();
    CHECK_THAT(text, Catch::StartsWith("{"));
    CHECK_THAT(text, Catch::Contains("\"level\":\"error\""));
    CHECK_THAT(text, Catch::Contains("\"msg\":\"bad\""));
  }
}

TEST_CASE("completions are generated from the flag tree", "[cli]") {
  harness h;
  auto flags = pipekit::cli::completions(h.app, "flags");
  CHECK_THAT(flags, Catch::Contains("demo: --log-format --quiet --verbose --version -q -v"));
  CHECK_THAT(flags, Catch::Contains("demo greet: --count --name"));
  CHECK_THAT(flags, !Catch::Contains("--completions"));
  auto bash = pipekit::cli::completions(h.app, "bash");
  CHECK_THAT(bash, Catch::Contains("complete -F _demo demo"));
  CHECK_THAT(bash, Catch::Contains("greet) opts='-h --help --count --name'"));
  auto zsh = pipekit::cli::completions(h.app, "zsh");
  CHECK_THAT(zsh, Catch::StartsWith("#compdef demo"));
  CHECK_THAT(zsh, Catch::Contains("'greet:Say hello'"));
  auto fish = pipekit::cli::completions(h.app, "fish");
  CHECK_THAT(fish, Catch::Contains("complete -c demo -n '__fish_seen_subcommand_from greet' -l name -r -f -d 'Who to greet'"));
}

TEST_CASE("--completions prints and exits before required arguments are checked", "[cli]") {
  harness h;
  h.app.get_subcommand("greet")->get_option("--name")->required();
  pipekit::test::fd_capture out(1);
  CHECK(h.run({"--completions", "fish"}, [] { return 9; }) == 0);
  CHECK_THAT(out.text(), Catch::Contains("complete -c demo"));
}

TEST_CASE("--config reads nsq-style TOML: underscores for dashes, the command line wins", "[cli]") {
  using namespace pipekit;
  struct daemon_harness {
    CLI::App app{"A daemon."};
    cli::log_flags log;
    std::string tcp_address = "127.0.0.1:4160";
    std::string http_address = "127.0.0.1:4161";
    std::string timeout = "5m";
    daemon_harness() {
      cli::init_app(app, "daemon");
      cli::add_log_flags(app, log);
      cli::add_config_flag(app);
      app.add_option("--tcp-address", tcp_address);
      app.add_option("--http-address", http_address);
      app.add_option("--inactive-producer-timeout", timeout);
    }
    int run(std::vector<std::string> args) {
      std::vector<char*> argv{const_cast<char*>("daemon")};
      for (auto& a : args) argv.push_back(a.data());
      return cli::run_main(app, log, static_cast<int>(argv.size()), argv.data(), [] { return 0; });
    }
  };
  char path[] = "/tmp/pipekit-config-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::string toml =
      "## nsqlookupd.cfg\n"
      "tcp_address = \"0.0.0.0:5160\"\n"
      "http_address = \"0.0.0.0:5161\"\n"
      "inactive_producer_timeout = \"300s\"\n"
      "log_level = \"info\"   # not a flag here: ignored, as nsq ignores unknown keys\n"
      "verbose = true\n";
  REQUIRE(::write(fd, toml.data(), toml.size()) == static_cast<ssize_t>(toml.size()));
  ::close(fd);
  SECTION("values from the file") {
    daemon_harness h;
    CHECK(h.run({"--config", path}) == exit_code::ok);
    CHECK(h.tcp_address == "0.0.0.0:5160");
    CHECK(h.http_address == "0.0.0.0:5161");
    CHECK(h.timeout == "300s");
    CHECK(h.log.verbose == 1);
  }
  SECTION("a flag on the command line wins") {
    daemon_harness h;
    CHECK(h.run({"--config", path, "--tcp-address", "127.0.0.1:1"}) == exit_code::ok);
    CHECK(h.tcp_address == "127.0.0.1:1");
    CHECK(h.http_address == "0.0.0.0:5161");
  }
  SECTION("a missing file is a configuration error (78)") {
    daemon_harness h;
    test::fd_capture err(2);
    CHECK(h.run({"--config", "/nonexistent/lookupd.cfg"}) == exit_code::config);
    CHECK_THAT(err.text(), Catch::Contains("daemon: --config"));
  }
  ::unlink(path);
}
