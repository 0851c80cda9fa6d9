// nsq-broker: the public face (the server, stop, run), its options, accepting clients, the queue scan
// (timeouts and deferred messages) and shutdown; on one io_context.
#include "pipekit/broker/server.hpp"

#include <chrono>

#include <boost/asio/io_context.hpp>

#include "pipekit/broker/server_internal.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::broker {

void add_topic_msg_ttl(options& opts, std::string_view spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string_view::npos) throw std::invalid_argument("want TOPIC=DURATION");
  std::string_view name = spec.substr(0, eq);
  if (!is_valid_topic_name(name))
    throw std::invalid_argument(fmt::format("\"{}\" is not a valid topic name", name));
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(util::parse_duration(spec.substr(eq + 1)));
  opts.topic_msg_ttl.insert_or_assign(std::string(name), ttl);
}

// --- the broker ------------------------------------------------------------------------------

server::impl::impl(asio::io_context& ctx, options o) : opts(std::move(o)), io(ctx) {
  limits.max_msg_size = opts.max_msg_size;
  limits.max_body_size = opts.max_body_size;
  limits.max_rdy_count = opts.max_rdy_count;
  limits.max_req_timeout_ms = opts.max_req_timeout.count();
  limits.valid_topic = is_valid_topic_name;
  limits.valid_channel = is_valid_channel_name;
  id_limits.max_heartbeat_interval_ms = opts.max_heartbeat_interval.count();
  id_limits.max_output_buffer_size = opts.max_output_buffer_size;
  id_limits.max_output_buffer_timeout_ms = opts.max_output_buffer_timeout.count();
  id_limits.max_msg_timeout_ms = opts.max_msg_timeout.count();
  start_ns = wall_ns();
  nsqd_log_level = static_cast<int>(log::min_level()) + 1;  // debug 1, info 2, warn 3, error 4, off 5 (fatal)
}

connection* server::impl::find_connection(std::uint64_t id) {
  auto it = connections.find(id);
  return it == connections.end() ? nullptr : it->second.get();
}

void server::impl::scan() {
  const std::int64_t now = steady_ns();
  for (auto& [tname, t] : topics) {
    for (auto& [cname, cp] : t->channels) {
      channel& c = *cp;
      bool changed = false;
      while (!c.in_flight_pq.empty() && c.in_flight_pq.top().at_ns <= now) {
        timed_id top = c.in_flight_pq.top();
        c.in_flight_pq.pop();
        auto it = c.in_flight.find(top.id);
        if (it == c.in_flight.end() || it->second.deadline_ns != top.at_ns) continue;  // done or touched
        if (connection* conn = find_connection(it->second.client_id)) conn->message_done();
        message m = std::move(it->second.msg);
        c.in_flight.erase(it);
        ++c.timeout_count;
        put_channel(c, std::move(m));
        changed = true;
      }
      while (!c.deferred_pq.empty() && c.deferred_pq.top().at_ns <= now) {
        auto seq = c.deferred_pq.top().seq;
        c.deferred_pq.pop();
        auto it = c.deferred.find(seq);
        if (it == c.deferred.end()) continue;
        message m = std::move(it->second);
        c.deferred.erase(it);
        c.queue.put(std::move(m));
        changed = true;
      }
      if (changed) deliver(c);
    }
    // A topic that waited for a full #ephemeral channel (--ephemeral-overflow hold) and was not
    // woken by a delivery: its backlog moves on now.
    if (!t->queue.empty() && !t->paused && !t->channels.empty() && topic_room(*t) > 0) pump(*t);
  }
  report_drops(steady_ns(), false);
  flush_dirty();
  if (!opts.data_path.empty() && now - last_sync_ns >= opts.sync_timeout.count() * ns_per_ms) sync_disk();
  if (stopping) return;
  scan_timer.expires_after(opts.queue_scan_interval);
  scan_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) scan();
  });
}

std::string server::impl::broadcast_address() const {
  if (!opts.broadcast_address.empty()) return opts.broadcast_address;
  auto a = tcp_listener ? tcp_listener->local_endpoint().address() : asio::ip::address();
  if (a.is_unspecified()) return a.is_v6() ? "::1" : "127.0.0.1";
  return a.to_string();
}

void server::impl::accept(tcp::socket socket) {
  if (stopping) return;
  if (opts.max_connections > 0 && connections.size() >= static_cast<std::size_t>(opts.max_connections)) {
    std::string frame;
    append_frame(frame, frame_type::error,
                 fmt::format("E_TOO_MANY_CONNECTIONS {} clients connected (--max-connections)", opts.max_connections));
    return refused.refuse(std::move(socket), opts.max_connections, frame);
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::uint64_t id = next_client_id++;
  auto conn = std::make_shared<connection>(*this, std::move(socket), id);
  connections.emplace(id, conn);
  conn->start();
}

void server::impl::shutdown() {
  if (stopping) return;
  stopping = true;
  if (tcp_listener) tcp_listener->close();
  if (http) http->stop();
  stop_lookup_peers();
  scan_timer.cancel();
  report_drops(steady_ns(), true);
  std::vector<std::shared_ptr<connection>> all;
  for (auto& [id, c] : connections) all.push_back(c);
  // Consumers leave their channels first (what they had in flight goes back), then the queues are
  // persisted, then each connection writes what it has buffered and closes (1 s at most).
  for (auto& c : all)
    if (channel* ch = c->subscription()) remove_consumer(*ch, *c);
  persist_all();
  for (auto& c : all) c->drain();
  stop_timer.expires_after(std::chrono::seconds(1));
  stop_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::vector<std::shared_ptr<connection>> left;
    for (auto& [id, c] : connections) left.push_back(c);
    for (auto& c : left) c->close();
  });
  log::info("TCP: closing {}", tcp_port);
}

// --- the public face -------------------------------------------------------------------------

void server::impl::start() {
  if (opts.durable && opts.data_path.empty())
    throw option_error(option_error::kind::config, {"durable", "data_path"},
                       "{} needs {}; durable messages live in its disk queues");
  load_tls();
  for (const auto& a : opts.auth_http_addresses) {
    if (a.rfind("https://", 0) == 0)
      throw option_error(option_error::kind::config, {"auth_http_address"},
                         "{} " + a + ": https is not supported; use http:// (on a trusted network)");
    if (auto scheme = a.find("://"); scheme != std::string::npos && a.rfind("http://", 0) != 0)
      throw option_error(option_error::kind::config, {"auth_http_address"}, "{} " + a + ": only http:// URLs");
  }
  if (opts.max_connections < 0) opts.max_connections = static_cast<std::int64_t>(net::default_max_connections());
  tcp_listener = std::make_unique<net::tcp_listener>(
      io, opts.tcp_address, [this](tcp::socket s) { accept(std::move(s)); }, "tcp_address");
  tcp_port = tcp_listener->port();
  log::info("TCP: listening on {} (--max-connections {})", net::to_string(tcp_listener->local_endpoint()),
            opts.max_connections);
  if (!opts.http_address.empty()) {
    http = make_http_frontend(*this, opts.http_address);
    if (http) http_port = http->port();
  }
  if (!opts.data_path.empty()) load_metadata();
  start_lookup_peers();
  scan_timer.expires_after(opts.queue_scan_interval);
  scan_timer.async_wait([this](const boost::system::error_code& e) {
    if (!e) scan();
  });
}

server::server(asio::io_context& io, options opts) : impl_(std::make_unique<impl>(io, std::move(opts))) {
  impl_->start();
}

server::~server() = default;

std::uint16_t server::tcp_port() const { return impl_->tcp_port; }

std::uint16_t server::http_port() const { return impl_->http_port; }

void server::stop() { impl_->shutdown(); }

bool server::idle() const { return impl_->connections.empty() && (!impl_->http || impl_->http->connections() == 0); }

int run(const options& opts) {
  asio::io_context io{1};  // one thread: no locks on the message path
  server s(io, opts);
  bool stopping = false;
  util::on_stop_signals(io, [&](int signo) {
    log::info("signal {}: shutting down", signo);
    if (stopping) return;
    stopping = true;
    s.stop();
    io.stop();
  });
  io.run();
  // The shutdown runs to its end (the clients drained, or closed after 1 s), bounded.
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!s.idle() && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(50));
  return exit_code::ok;
}

}  // namespace pipekit::broker
