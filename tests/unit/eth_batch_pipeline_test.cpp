// eth::batch_pipeline: results come out in input order whatever order the workers finish in,
// at most max_in_flight chunks are held, and stop() releases every role.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "pipekit/eth/batch_pipeline.hpp"

namespace eth = pipekit::eth;

TEST_CASE("batch_pipeline: in input order, bounded, stoppable", "[batch_pipeline]") {
  constexpr std::uint64_t chunks = 200;
  constexpr std::size_t max_in_flight = 4;
  eth::batch_pipeline p(max_in_flight);

  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w)
    workers.emplace_back([&, w] {
      while (auto c = p.take()) {
        // Later chunks finish first now and then: the writer must still get them in order.
        if ((c->seq + static_cast<std::uint64_t>(w)) % 3 == 0) std::this_thread::yield();
        eth::batch_result r;
        r.text = std::to_string(c->seq) + "\n";
        p.finish(c->seq, std::move(r));
      }
    });
  std::vector<std::string> written;
  std::thread writer([&] {
    while (auto r = p.next_in_order()) written.push_back(r->text);
  });
  for (std::uint64_t i = 0; i < chunks; ++i) {
    eth::batch_chunk c;
    c.seq = i;
    c.lines.emplace_back(i + 1, "line");
    c.too_long.push_back(false);
    REQUIRE(p.push(std::move(c)));
  }
  p.close_input();
  for (auto& t : workers) t.join();
  writer.join();
  REQUIRE(written.size() == chunks);
  for (std::uint64_t i = 0; i < chunks; ++i) CHECK(written[i] == std::to_string(i) + "\n");
  CHECK(p.failure() == nullptr);

  SECTION("a reader waits while max_in_flight chunks are held, until one is taken") {
    eth::batch_pipeline q(2);
    REQUIRE(q.push(eth::batch_chunk{}));
    REQUIRE(q.push(eth::batch_chunk{}));
    std::atomic<bool> pushed{false};
    std::thread reader([&] { pushed = q.push(eth::batch_chunk{}); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a window in which it must not get through
    CHECK_FALSE(pushed.load());
    REQUIRE(q.take().has_value());  // one taken, finished and written: room again
    q.finish(0, {});
    REQUIRE(q.next_in_order().has_value());
    reader.join();
    CHECK(pushed.load());
  }
  SECTION("stop releases a reader blocked on a full pipeline, and keeps the failure") {
    eth::batch_pipeline q(1);
    REQUIRE(q.push(eth::batch_chunk{}));  // full: nobody takes it
    std::thread reader([&] { CHECK_FALSE(q.push(eth::batch_chunk{})); });
    q.stop(std::make_exception_ptr(std::runtime_error("worker failed")));
    reader.join();
    CHECK(q.failure() != nullptr);
    CHECK_FALSE(q.take().has_value());
    CHECK_FALSE(q.next_in_order().has_value());
  }
}
