#include "pipekit/util/signals.hpp"

#include <csignal>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace pipekit::util {

void ignore_sigpipe() { std::signal(SIGPIPE, SIG_IGN); }

namespace {
void wait_next(std::shared_ptr<boost::asio::signal_set> set, std::function<void(int)> on_stop) {
  set->async_wait([set, on_stop = std::move(on_stop)](const boost::system::error_code& ec, int signo) mutable {
    if (ec) return;  // operation_aborted: the io_context is shutting down
    on_stop(signo);
    wait_next(std::move(set), std::move(on_stop));
  });
}
}  // namespace

void on_stop_signals(boost::asio::io_context& io, std::function<void(int)> on_stop) {
  auto set = std::make_shared<boost::asio::signal_set>(io, SIGINT, SIGTERM);
  wait_next(std::move(set), std::move(on_stop));
}

}  // namespace pipekit::util
