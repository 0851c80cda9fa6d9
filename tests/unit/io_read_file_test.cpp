#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/read_file.hpp"
#include "support/peers.hpp"

namespace io = pipekit::io;
namespace exit_code = pipekit::exit_code;

namespace {
int code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const io::file_error& e) {
    return e.code();
  }
  return 0;
}
}  // namespace

TEST_CASE("io::read_file: whole files up to a bound; clear errors past it", "[io]") {
  pipekit::test::temp_dir dir;
  const std::string path = (dir.path() / "f").string();
  std::ofstream(path) << std::string(100000, 'x');
  CHECK(io::read_file(path, 100000).size() == 100000);
  CHECK(code_of([&] { io::read_file(path, 99999); }) == exit_code::data_error);
  std::vector<std::uint8_t> secret;
  io::read_file(path, 200000, secret);
  CHECK(secret.size() == 100000);

  // Files without end, directories, missing files: an error, never unbounded memory.
  CHECK(code_of([] { io::read_file("/dev/zero", 1 << 20); }) == exit_code::data_error);
  CHECK(code_of([&] { io::read_file("/dev/zero", 1 << 20, secret); }) == exit_code::data_error);
  CHECK(code_of([&] { io::read_file(dir.path().string(), 1 << 20); }) == exit_code::no_input);
  CHECK(code_of([&] { io::read_file(path + ".missing", 1 << 20); }) == exit_code::no_input);
  try {
    io::read_file(dir.path().string(), 10);
  } catch (const io::file_error& e) {
    CHECK(std::string(e.what()) == "is a directory");
  }
  std::ofstream(path, std::ios::trunc).flush();
  CHECK(io::read_file(path, 10).empty());
}
