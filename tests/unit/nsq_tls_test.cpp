#include <catch2/catch.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "pipekit/broker/server.hpp"
#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/nsq/client_flags.hpp"

using namespace pipekit::nsq;
using namespace pipekit::net;
using namespace pipekit::broker;

TEST_CASE("--tls-required takes nsqd's values", "[nsq]") {
  tls_required_mode m = tls_required_mode::yes;
  CHECK(parse_tls_required("false", m));
  CHECK(m == tls_required_mode::no);
  for (const char* yes : {"true", "TRUE", "True", "1", "t", "T"}) {
    INFO(yes);
    m = tls_required_mode::no;
    CHECK(parse_tls_required(yes, m));
    CHECK(m == tls_required_mode::yes);
  }
  for (const char* no : {"false", "FALSE", "0", "f", "F"}) {
    INFO(no);
    m = tls_required_mode::yes;
    CHECK(parse_tls_required(no, m));
    CHECK(m == tls_required_mode::no);
  }
  CHECK(parse_tls_required("tcp-https", m));
  CHECK(m == tls_required_mode::tcp_https);
  CHECK(parse_tls_required("TCP-HTTPS", m));
  for (const char* bad : {"", "yes", "no", "https", "2"}) {
    INFO(bad);
    CHECK_FALSE(parse_tls_required(bad, m));
  }
}

TEST_CASE("--tls-min-version takes nsqd's names", "[nsq]") {
  for (const char* v : {"tls1.0", "tls1.1", "tls1.2", "tls1.3"}) CHECK(valid_tls_min_version(v));
  for (const char* v : {"", "ssl3.0", "TLS1.2", "tls1.4", "1.2"}) CHECK_FALSE(valid_tls_min_version(v));
  CHECK(default_tls_min_version == "tls1.2");
  CHECK(tls_client_options{}.min_version == "tls1.2");
  CHECK(tls_server_options{}.min_version == "tls1.2");
}

TEST_CASE("TLS files: unreadable is 66, malformed is 78, each error names its flag", "[nsq]") {
  auto dir = std::filesystem::temp_directory_path() / ("pipekit-tls-unit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string junk = (dir / "junk.pem").string();
  std::ofstream(junk) << "not a certificate\n";
  auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const pipekit::option_error& e) {
      INFO(e.what());
      return pipekit::exit_code_of(e);
    }
    return 0;
  };
  auto message_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const pipekit::option_error& e) {
      return e.with_names(pipekit::cli::flag_of_option);  // as a program shows it
    }
    return {};
  };
  tls_server_options s;
  s.cert_file = (dir / "missing.pem").string();
  s.key_file = junk;
  CHECK(code_of([&] { tls_context::server(s); }) == pipekit::exit_code::no_input);
  CHECK_THAT(message_of([&] { tls_context::server(s); }), Catch::Contains("--tls-cert") && Catch::Contains("missing.pem"));
  s.cert_file = junk;
  CHECK(code_of([&] { tls_context::server(s); }) == pipekit::exit_code::config);
  s.key_file.clear();
  CHECK(code_of([&] { tls_context::server(s); }) == pipekit::exit_code::config);

  tls_client_options c;
  c.enabled = true;
  c.root_ca_file = (dir / "missing-ca.pem").string();
  CHECK(code_of([&] { tls_context::client(c); }) == pipekit::exit_code::no_input);
  CHECK_THAT(message_of([&] { tls_context::client(c); }), Catch::Contains("--tls-root-ca-file"));
  c.root_ca_file = junk;
  CHECK(code_of([&] { tls_context::client(c); }) == pipekit::exit_code::config);
  c.root_ca_file.clear();
  c.cert_file = junk;
  CHECK(code_of([&] { tls_context::client(c); }) == pipekit::exit_code::usage);  // no --tls-key
  CHECK(code_of([&] {
          tls_client_options plain;
          plain.enabled = true;
          tls_context::client(plain);  // the system's store
        }) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("TLS options that only mean something with TLS turn it on", "[nsq]") {
  tls_client_options o;
  CHECK_FALSE(o.wanted());
  o.min_version = "tls1.3";
  CHECK_FALSE(o.wanted());
  for (int i = 0; i < 4; ++i) {
    tls_client_options t;
    if (i == 0) t.enabled = true;
    if (i == 1) t.root_ca_file = "ca.pem";
    if (i == 2) t.cert_file = "client.pem";
    if (i == 3) t.insecure_skip_verify = true;
    CHECK(t.wanted());
  }
}

TEST_CASE("the broker refuses to require TLS without a certificate", "[nsq]") {
  options o;
  o.tcp_address = "127.0.0.1:0";
  o.http_address.clear();
  o.tls_required = tls_required_mode::tcp_https;
  boost::asio::io_context io;
  try {
    server b(io, o);
    FAIL("the server did not refuse");
  } catch (const pipekit::option_error& e) {
    CHECK(e.error_kind() == pipekit::option_error::kind::config);
    CHECK(std::string(e.what()) == "cannot require TLS client connections without TLS key and cert (tls_cert, tls_key)");
    CHECK(e.with_names(pipekit::cli::flag_of_option) ==
          "cannot require TLS client connections without TLS key and cert (--tls-cert, --tls-key)");
  }
}

TEST_CASE("nsq-pub's and nsq-tail's connection flags: compression, AUTH secret, TLS", "[nsq]") {
  auto parse = [](std::vector<std::string> args, client_flags& f) {
    CLI::App app;
    add_client_flags(app, f);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  };
  client_flags none;
  parse({}, none);
  CHECK(none.resolved().deflate_level == 0);
  CHECK_FALSE(none.resolved().snappy);
  CHECK_FALSE(none.resolved().tls.wanted());

  client_flags f;
  parse({"--deflate", "--deflate-level", "3", "--tls-root-ca-file", "ca.pem"}, f);
  const connection_settings fs = f.resolved();
  CHECK(fs.deflate_level == 3);
  CHECK(fs.tls.wanted());
  CHECK(fs.tls.root_ca_file == "ca.pem");

  client_flags sn;
  parse({"--snappy", "--deflate-level", "3"}, sn);  // a level without --deflate asks for none
  CHECK(sn.resolved().snappy);
  CHECK(sn.resolved().deflate_level == 0);

  client_flags both;
  CHECK_THROWS_AS(parse({"--deflate", "--snappy"}, both), CLI::ExcludesError);

  char path[] = "/tmp/pipekit-secret-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "s3cret\n", 7) == 7);
  ::close(fd);
  client_flags s;
  parse({"--auth-secret-file", path}, s);
  CHECK(s.resolved().auth_secret == "s3cret");  // the trailing newline is not part of it
  std::filesystem::remove(path);
  try {
    (void)s.resolved();
    FAIL("an unreadable secret file must exit");
  } catch (const pipekit::fatal_error& e) {
    CHECK(e.code() == pipekit::exit_code::no_input);
  }
}
