// eth::checkpoint_file (log_follower.hpp): what a follower resumes from, and its errors as
// eth::error kinds naming the file, without a command line.
#include <deque>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/log_follower.hpp"
#include "support/peers.hpp"

namespace pt = pipekit::test;
namespace eth = pipekit::eth;

namespace {

std::string hash_of(char c) { return "0x" + std::string(64, c); }

eth::error_kind load_error(const std::string& path) {
  try {
    eth::checkpoint_file(path).load();
  } catch (const eth::error& e) {
    CHECK(e.subject() == path);
    CHECK_THAT(e.what(), Catch::Contains(path));
    return e.kind();
  }
  FAIL("no eth::error");
  return eth::error_kind::internal;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("checkpoint_file: saved blocks load back; bad files are eth::error kinds", "[log_follower]") {
  pt::temp_dir dir;
  const std::string path = (dir.path() / "cp.json").string();
  eth::checkpoint_file cp(path);
  CHECK_FALSE(cp.load().has_value());  // not there yet: a fresh start

  std::deque<eth::emitted_block> recent{{41, hash_of('a'), std::nullopt}, {42, hash_of('b'), std::nullopt}};
  cp.save(42, recent);
  auto loaded = cp.load();
  REQUIRE(loaded.has_value());
  CHECK(loaded->first == 42);
  REQUIRE(loaded->second.size() == 2);
  CHECK(loaded->second.front().number == 41);
  CHECK(loaded->second.back().hash == hash_of('b'));
  CHECK_FALSE(loaded->second.back().records.has_value());  // unknown: from a file

  write(path, "{\"version\":2,\"block\":1}");
  CHECK(load_error(path) == eth::error_kind::invalid_input);
  write(path, "not json");
  CHECK(load_error(path) == eth::error_kind::invalid_input);
  write(path, "{\"version\":1,\"block\":5,\"hash\":\"0x00\",\"recent\":[\"0x00\"]}");
  CHECK(load_error(path) == eth::error_kind::invalid_input);
  CHECK(load_error(dir.path().string()) == eth::error_kind::unreadable);  // a directory

  try {
    eth::checkpoint_file((dir.path() / "no-such-dir" / "cp.json").string()).save(1, recent);
    FAIL("no error");
  } catch (const eth::error& e) {
    CHECK(e.kind() == eth::error_kind::write_failed);
  }
}
