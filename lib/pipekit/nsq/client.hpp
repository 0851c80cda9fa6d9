#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "pipekit/nsq/compress.hpp"
#include "pipekit/nsq/connection_settings.hpp"
#include "pipekit/nsq/protocol.hpp"

namespace boost::asio {
class io_context;
}
namespace pipekit::net {
class tls_context;
class tls_session;
}  // namespace pipekit::net

// One client connection to an nsqd (or nsq-broker) speaking TCP protocol V2: connect, magic,
// IDENTIFY with feature negotiation, then frames in and commands out. Heartbeats are answered
// here (NOP); everything else goes to the handlers, on the io_context's thread, in wire order.
// Used by nsq-pub (responses to PUB/MPUB/DPUB arrive in the order the commands were sent) and
// nsq-tail (messages, FIN/REQ/TOUCH).
namespace pipekit::nsq {

struct client_options {
  std::string address;  // "host:port" of the broker's TCP listener
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds heartbeat_interval{30000};  // asked for in IDENTIFY; -1 disables
  std::chrono::milliseconds msg_timeout{0};             // 0: the broker's default
  std::int64_t output_buffer_size = 0;                  // 0: the broker's default
  std::chrono::milliseconds output_buffer_timeout{0};
  std::string client_id;   // default: the short host name
  std::string user_agent;  // default: "pipekit/<version>"
  std::size_t max_frame = 64u << 20;
  connection_settings connection;  // compression and AUTH; TLS is the context below
  // Set (the owner builds it once from connection.tls for all its connections): ask for tls_v1 in
  // IDENTIFY and upgrade (the certificate checked against the address's host unless the context
  // skips verification); a broker that does not offer TLS is refused.
  std::shared_ptr<net::tls_context> tls;
};

class client : public std::enable_shared_from_this<client> {
 public:
  struct handlers {
    // IDENTIFY answered: the broker's JSON (max_msg_size, max_rdy_count, msg_timeout, ...),
    // or an empty object when it answered a plain OK. Commands may be sent from now on.
    std::function<void(const nlohmann::json&)> on_ready;
    std::function<void(std::string_view)> on_response;  // "OK", "CLOSE_WAIT"
    std::function<void(std::string_view)> on_error;     // "E_BAD_TOPIC ..."
    std::function<void(const message_view&)> on_message;
    // Once, when the connection ends for any reason (never called after close() by the owner).
    std::function<void(const std::string& why)> on_close;
  };

  static std::shared_ptr<client> create(boost::asio::io_context& io, client_options options, handlers h);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Resolves, connects (within connect_timeout), sends the magic and IDENTIFY.
  void start();
  // Queues bytes (commands built with append_command/append_mpub) to be written in order; writes
  // are coalesced. Ignored when the connection is closed.
  void send(std::string_view bytes);
  std::string& output() noexcept { return out_; }  // append commands here, then flush()
  void flush();
  // Closes now; no handler runs after this returns.
  void close();

  bool ready() const noexcept { return stage_ == stage::ready; }
  bool closed() const noexcept { return closed_; }
  const std::string& address() const noexcept { return options_.address; }
  const nlohmann::json& identify_response() const noexcept { return *identify_; }
  std::size_t unsent_bytes() const noexcept { return out_.size() + writing_.size(); }
  // Why the connection ended for a reason that trying again will not cure: TLS cannot be used (a
  // certificate that does not verify, a broker without TLS when TLS was asked for), or AUTH was
  // refused (no secret for a broker that requires one, or its answer E_AUTH_FAILED), or granted
  // nothing (E_UNAUTHORIZED). nsqd closes the connection after either answer. Valid in on_close.
  enum class final_failure { none, tls, auth_failed, unauthorized };
  final_failure permanent_failure() const noexcept { return permanent_; }
  bool failed_permanently() const noexcept { return permanent_ != final_failure::none; }

  struct impl;

 private:
  client(boost::asio::io_context& io, client_options options, handlers h);
  void fail(const std::string& why);
  void read_more();
  void on_read(std::size_t n);
  bool handle_frame(const frame& f);
  bool handshake(std::string_view data);
  bool become_ready();
  bool compression_negotiated() const;
  bool begin_compression();
  void write_more();
  void watchdog();
  bool decode_into_in(std::string_view raw);
  bool start_compression();
  bool start_tls();
  template <class Handler>
  void read_some(char* data, std::size_t n, Handler&& h);

  std::unique_ptr<impl> impl_;
  client_options options_;
  handlers handlers_;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  std::string writing_;
  bool writing_active_ = false;
  // IDENTIFY answered, then TLS's handshake and its OK, then the OK that starts compression (each
  // when negotiated), then AUTH (when required): ready only after them, so none of their answers
  // is taken for a command's.
  enum class stage { identify, tls, upgraded, auth, ready };
  stage stage_ = stage::identify;
  bool closed_ = false;
  std::unique_ptr<nlohmann::json> identify_;  // never null (a pointer keeps json.hpp out of this header)
  std::chrono::steady_clock::time_point last_read_;
  stream_codec codec_;  // set once deflate or snappy was negotiated
  std::string raw_;     // compressed bytes read
  std::unique_ptr<net::tls_session> tls_;  // once the broker agreed to tls_v1
  final_failure permanent_ = final_failure::none;
};

// The IDENTIFY body pipekit's clients send.
nlohmann::json identify_body(const client_options& options);

}  // namespace pipekit::nsq
