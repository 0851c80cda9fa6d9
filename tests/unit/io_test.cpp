#include <catch2/catch.hpp>
#include <fcntl.h>
#include <csignal>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "pipekit/cli/error.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/io/rejects.hpp"
#include "unit/capture.hpp"

namespace {

std::string temp_file(const std::string& content) {
  char name[] = "/tmp/pipekit-io-XXXXXX";
  int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  ::close(fd);
  return name;
}

struct read_line {
  std::string text;
  std::uint64_t number;
  bool too_long;
};

std::vector<read_line> read_all(const std::string& content, std::size_t max_line = pipekit::io::default_max_line) {
  auto path = temp_file(content);
  pipekit::io::line_reader r(path, max_line);
  std::vector<read_line> out;
  while (auto l = r.next()) out.push_back({std::string(l->text), l->number, l->too_long});
  ::unlink(path.c_str());
  return out;
}

}  // namespace

TEST_CASE("line_reader splits lines, tolerates CRLF and keeps a last line without newline", "[io]") {
  auto lines = read_all("a\r\nbb\n\nlast");
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "a");
  CHECK(lines[1].text == "bb");
  CHECK(lines[2].text.empty());
  CHECK(lines[3].text == "last");
  CHECK(lines[3].number == 4);
  CHECK(read_all("").empty());
  CHECK(read_all("x\n").size() == 1);
}

TEST_CASE("line_reader says how many bytes may be read past each line (for in-place parsing)", "[io]") {
  auto path = temp_file("ab\r\ncd\nlast");
  pipekit::io::line_reader r(path);
  std::vector<std::size_t> slack;
  while (auto l = r.next()) {
    slack.push_back(l->slack);
    // Every byte counted is the line's own ending or a later line's: all readable.
    CHECK(std::string_view(l->text.data(), l->text.size() + l->slack).substr(l->text.size()).size() == l->slack);
  }
  ::unlink(path.c_str());
  CHECK(slack == std::vector<std::size_t>{9, 5, 0});  // "\r\ncd\nlast", "\nlast", nothing
}

TEST_CASE("line_reader handles lines spanning many reads", "[io]") {
  std::string big(200000, 'x');
  auto lines = read_all("s\n" + big + "\nt\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[1].text == big);
  CHECK(lines[2].text == "t");
  CHECK(lines[2].number == 3);
}

TEST_CASE("line_reader reports over-long lines and goes on", "[io]") {
  std::string big(300000, 'y');
  auto lines = read_all("ok\n" + big + "\nnext\n" + big, 1000);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "ok");
  CHECK(lines[1].too_long);
  CHECK(lines[1].text.empty());
  CHECK(lines[2].text == "next");
  CHECK_FALSE(lines[2].too_long);
  CHECK(lines[2].number == 3);
  CHECK(lines[3].too_long);
  CHECK(lines[3].number == 4);
}

TEST_CASE("line_reader: a missing file is exit 66", "[io]") {
  try {
    pipekit::io::line_reader r("/nonexistent/pipekit");
    FAIL("no exception");
  } catch (const pipekit::fatal_error& e) {
    CHECK(e.code() == 66);
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent/pipekit"));
  }
}

TEST_CASE("line_writer reports a closed pipe as EPIPE, not a crash", "[io]") {
  ::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);
  pipekit::io::line_writer w(fds[1]);
  CHECK(w.flushes_per_line());
  CHECK_FALSE(w.write_line("lost"));
  CHECK(w.closed());
  CHECK_FALSE(w.write_line("after"));
  ::close(fds[1]);
}

TEST_CASE("line_writer flushes each line to a pipe, batches when asked", "[io]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  char buf[64];
  {
    pipekit::io::line_writer w(fds[1]);
    REQUIRE(w.write_line("{\"a\":1}"));
    CHECK(::read(fds[0], buf, sizeof buf) == 8);
    w.batch_until_flush();
    REQUIRE(w.write_line("two"));
    CHECK(::read(fds[0], buf, sizeof buf) == -1);  // still buffered
    REQUIRE(w.flush());
    CHECK(::read(fds[0], buf, sizeof buf) == 4);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("rejects: logged on stderr and written as JSON records to --rejects", "[io]") {
  auto path = temp_file("");
  {
    pipekit::test::fd_capture err(2);
    pipekit::io::rejects r(path);
    r.add("stdin", 42, "invalid_json", "invalid JSON at column 3", "{x");
    r.add("stdin", 43, "abi_error", "bad \xff byte", "\xff");
    r.flush();
    CHECK(r.count() == 2);
    auto text = err.text();
    CHECK_THAT(text, Catch::Contains("stdin:42: invalid JSON at column 3"));
  }
  std::ifstream in(path);
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  CHECK(l1 == R"({"source":"stdin","line":42,"code":"invalid_json","error":"invalid JSON at column 3","input":"{x"})");
  CHECK_THAT(l2, Catch::Contains("\"line\":43"));  // invalid UTF-8 replaced, not a crash
  ::unlink(path.c_str());
}

TEST_CASE("write_file_atomic replaces a file whole, and says what failed", "[io]") {
  auto path = temp_file("old contents, longer than the new ones\n");
  CHECK(pipekit::io::write_file_atomic(path, "new\n").empty());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "new\n");
  CHECK(::access((path + ".tmp." + std::to_string(::getpid())).c_str(), F_OK) != 0);  // no temp file left
  ::unlink(path.c_str());
  std::string error = pipekit::io::write_file_atomic("/nonexistent-dir-pipekit/state", "x");
  CHECK(error.find("/nonexistent-dir-pipekit/state.tmp.") != std::string::npos);
  CHECK(error.find("No such file or directory") != std::string::npos);
}
