#pragma once
#include <functional>

namespace boost::asio {
class io_context;
}

namespace pipekit::util {

// SIGPIPE ignored process-wide: a write to a closed pipe returns EPIPE instead of killing us.
// (cli::run_main does this for every program.)
void ignore_sigpipe();

// Calls on_stop(signal_number) from the io_context when SIGINT or SIGTERM arrives
// (every time one arrives; a program usually drains on the first and exits on the second).
void on_stop_signals(boost::asio::io_context& io, std::function<void(int)> on_stop);

}  // namespace pipekit::util
