// run_until: drive an io_context in a unit test until a condition holds, with a deadline.
#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

namespace pipekit::test {

// Runs io until `done` holds; fails the test with `what` after the deadline.
inline void run_until(boost::asio::io_context& io, const std::function<bool()>& done, const char* what,
                      std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) FAIL("timed out waiting for: " << what);
    io.run_one_for(std::chrono::milliseconds(20));
  }
}

}  // namespace pipekit::test
