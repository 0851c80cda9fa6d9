#pragma once
// One TCP client of the broker (nsqd's client_v2.go and protocol_v2.go): what it negotiated and
// counts, and the connection that reads its commands and writes its frames.
// Single-threaded: touched only from the broker's io_context thread.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "pipekit/broker/message_internal.hpp"
#include "pipekit/broker/server.hpp"
#include "pipekit/net/tls.hpp"

namespace pipekit::broker {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using net::tls_session;
using net::tls_state;

inline constexpr int max_deflate_level = 6;  // nsqd --max-deflate-level

struct channel;
struct auth_state;  // pipekit/broker/auth.hpp

struct client_info {
  std::uint64_t id = 0;
  std::string remote_address;
  std::string client_id;
  std::string hostname;
  std::string user_agent;
  client_state state = client_state::init;
  std::int64_t ready_count = 0;
  std::int64_t in_flight_count = 0;
  std::uint64_t message_count = 0;
  std::uint64_t finish_count = 0;
  std::uint64_t requeue_count = 0;
  std::int64_t connect_ts = 0;
  std::int64_t sample_rate = 0;
  std::int64_t heartbeat_ms = 0;
  std::int64_t output_buffer_size = 0;
  std::int64_t output_buffer_timeout_ms = 0;
  std::int64_t msg_timeout_ms = 0;
  std::map<std::string, std::uint64_t, std::less<>> pub_counts;  // messages published, by topic
  bool deflate = false;
  bool snappy = false;
  bool authed = false;
  std::string auth_identity;
  std::string auth_identity_url;
  bool tls = false;
  tls_state tls_info;  // once tls
};

// One TCP client (protocol V2). Reads commands in batches, answers in one output buffer that is
// flushed when full, at the end of the current turn of the io_context, or when a write completes.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(server::impl& b, tcp::socket socket, std::uint64_t id);
  ~connection();
  void start();
  void close();  // idempotent; requeues what this client had in flight
  void drain();  // shutdown: write what is buffered (and the compressed stream's end), then close
  bool closed() const noexcept { return closed_; }

  // Delivery (called by the broker for a channel this client consumes).
  bool ready() const noexcept {
    return info.state == client_state::subscribed && info.in_flight_count < info.ready_count && !closed_ &&
           !fatal_;
  }
  void send_message(channel& c, message&& m);
  void message_done() noexcept { --info.in_flight_count; }
  // --durable: answers wait here, in command order, until a sync covers the publishes before them.
  void release_held(bool synced);
  bool holding() const noexcept { return held_count_ > 0; }
  void hold_response(std::string_view data);

  client_info info;
  // The channel this client consumes (SUB), or none. Set and cleared only by server::impl's
  // add_consumer, remove_consumer and close_consumers, together with the channel's consumers.
  channel* subscription() const noexcept { return sub_; }

 private:
  void read();
  void on_read(std::size_t n);
  bool handle(const command& cmd);
  void respond(std::string_view data);
  void fail(const client_error& err);
  void request_flush();
  void flush();
  void on_write(const boost::system::error_code& ec);
  // The connection's one timer: heartbeats, the read deadline of a command (read_deadline_ns), the
  // write deadline of output the client does not take (write_timeout_ns).
  void arm_timer();
  void on_timer();
  std::int64_t read_deadline_ns() const noexcept;  // 0: none now
  std::int64_t write_timeout_ns() const noexcept;
  // Answers and messages framed but not yet taken by the client: past max_pending_output the
  // connection stops reading commands (paused_for_output_) until the client has read half of it.
  std::size_t pending_output() const noexcept {
    return out_.size() + stage_.size() + writing_.size() + tls_plain_.size();
  }
  void resume_after_output();
  void pub(const command& cmd);
  void identify(const command& cmd);
  void subscribe(const command& cmd);
  void fin_req_touch(const command& cmd);
  // Compression (deflate or snappy, negotiated in IDENTIFY): frames are staged, then compressed
  // into out_ at flush; what is read is decoded into in_.
  std::string& frames() noexcept { return codec_ ? stage_ : out_; }
  bool decode_into_input(std::string_view data);
  // AUTH (--auth-http-address): the auth server is asked asynchronously; meanwhile this
  // connection reads and runs nothing more, then goes on with what it had buffered.
  void auth(const command& cmd);
  bool check_auth(const command& cmd);  // false: failed (fatal) for PUB/MPUB/DPUB/SUB
  bool auth_expired() const;
  void query_auth(bool refresh);
  void on_auth(bool refresh, std::size_t attempt, std::size_t start, std::string error, auth_state* state);
  void process_input();  // runs what is buffered, then reads on (unless waiting for the auth server)
  std::size_t parse_input();
  // TLS (tls.cpp): IDENTIFY with tls_v1 moves what is buffered (its response) aside to be
  // written in plain text; the handshake follows, then everything else goes through tls_.
  void begin_tls();
  void after_identify_tls(std::size_t parsed);
  void start_tls_handshake();
  bool tls_refuses(std::string_view input);  // --tls-required: a command before TLS fails
  template <class Handler>
  void read_some(asio::mutable_buffer b, Handler&& h);
  template <class Handler>
  void write_all(asio::const_buffer b, Handler&& h);

  friend struct server::impl;  // the subscription (sub_)
  server::impl& b_;
  channel* sub_ = nullptr;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string in_;  // in_len_ bytes of commands; the rest is room to read into
  std::size_t in_len_ = 0;
  std::string out_;
  std::string writing_;
  std::string stage_;
  stream_codec codec_;
  std::vector<char> raw_;  // compressed input, read before decoding
  bool switch_input_ = false;    // the rest of in_ is compressed (compression started mid-buffer)
  bool finish_stream_ = false;   // drain: end the compressed stream (deflate's final block)
  std::unique_ptr<tls_session> tls_;  // after the handshake began; the socket stays socket_
  std::string tls_plain_;             // the IDENTIFY response (and what was before it), in plain text
  bool tls_pending_ = false;          // IDENTIFY negotiated TLS; the handshake has not finished
  bool magic_ok_ = false;
  bool write_pending_ = false;
  bool flush_posted_ = false;
  bool fatal_ = false;  // an error closes this connection once the output is written
  bool closed_ = false;
  bool paused_for_output_ = false;
  // When the command being read began: the end of the one before (nsqd's read deadline is set
  // before each command), or with heartbeats off its first byte. It must be whole within
  // 2 x heartbeat interval (client_timeout with heartbeats off).
  std::int64_t command_since_ns_ = 0;
  std::int64_t write_since_ns_ = 0;  // the pending write began
  std::int64_t next_heartbeat_ns_ = 0;
  std::int64_t heartbeat_ns_ = 0;
  std::int64_t msg_timeout_ns_ = 0;
  std::size_t flush_at_ = 16 * 1024;
  std::unique_ptr<auth_state> auth_;
  std::string auth_secret_;
  std::int64_t auth_expires_ns_ = 0;
  bool auth_pending_ = false;    // waiting for the auth server: nothing is read or run meanwhile
  std::string held_;             // framed answers held for a sync (--durable)
  std::size_t held_count_ = 0;   // publishes among them
};

template <class Handler>
void connection::read_some(asio::mutable_buffer b, Handler&& h) {
  if (tls_) tls_->async_read_some(b, std::forward<Handler>(h));
  else socket_.async_read_some(b, std::forward<Handler>(h));
}

template <class Handler>
void connection::write_all(asio::const_buffer b, Handler&& h) {
  if (tls_) tls_->async_write(b, std::forward<Handler>(h));
  else asio::async_write(socket_, b, std::forward<Handler>(h));
}

}  // namespace pipekit::broker
