#include <catch2/catch.hpp>

#include <csignal>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "pipekit/util/signals.hpp"

TEST_CASE("SIGTERM and SIGINT reach the io_context, each time they arrive", "[util]") {
  boost::asio::io_context io;
  std::vector<int> seen;
  pipekit::util::on_stop_signals(io, [&](int signo) {
    seen.push_back(signo);
    if (seen.size() == 2) io.stop();
  });
  std::raise(SIGTERM);
  std::raise(SIGINT);
  io.run_for(std::chrono::seconds(10));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == SIGTERM);
  CHECK(seen[1] == SIGINT);
}
