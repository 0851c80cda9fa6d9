#pragma once
// A byte stream that is either Next (tcp::socket or beast::tcp_stream) or TLS over Next, chosen
// at run time, for websocket::stream<tls_or_plain<Next>> and Beast's HTTP operations.
//
// Why: Beast's composed operations are compiled once per stream type and completion handler, and
// everything under them (TLS, tcp_stream's timeouts, the socket's reactor operations) once per
// operation above. With one stream type and the reads and writes handed down through one handler
// type (erased, as a heap object holding the operation), the WebSocket and HTTP operations are
// compiled once for ws:// and wss://, and what is under them once in tls_or_plain.cpp (20 s): the
// WebSocket clients in push/connect.cpp and eth/rpc_stream.cpp went from 98 and 80 s of -O2 to 40
// and 34 s.
// The cost: one allocation per read or write of the bottom layer; at most max_buffers buffers of a
// sequence per read or write (a read_some or write_some may transfer less; callers loop). Empty
// buffers count among them: a sequence that starts with max_buffers empty ones transfers 0 bytes
// (as a socket does past its 64; asio::async_read/async_write and Beast's buffers_cat skip them).
//
// Threading: as Next's (one thread at a time). Completions run on the executor of the operation
// above (its associated executor), the WebSocket close's teardown included, and a cancellation
// through its cancellation slot reaches the operation below, as they would without the erasure.

#include <array>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace pipekit::net {

// A read's or write's completion handler, moved to the heap: one type for every operation above.
class io_handler {
 public:
  using executor_type = boost::asio::any_io_executor;

  template <class Handler>
  io_handler(Handler&& h, const executor_type& fallback)
      : ex_(boost::asio::get_associated_executor(h, fallback)),
        p_(new holder<std::decay_t<Handler>>(std::forward<Handler>(h))) {}

  executor_type get_executor() const noexcept { return ex_; }

  // A slot of the holder's own signal when the handler has a slot: what is emitted on the
  // handler's slot is emitted on it (Beast's per-operation cancellation, bind_cancellation_slot).
  using cancellation_slot_type = boost::asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return p_ && p_->forwarding ? p_->signal.slot() : cancellation_slot_type();
  }

  // Frees the holder before the call (Asio's rule: memory back before the upcall).
  void operator()(boost::beast::error_code ec, std::size_t n) {
    base* p = p_.release();
    p->call_and_free(ec, n);
  }

 private:
  struct base {
    virtual ~base() = default;
    virtual void call_and_free(boost::beast::error_code ec, std::size_t n) = 0;
    boost::asio::cancellation_signal signal;  // the operation below listens to it
    bool forwarding = false;
  };
  struct forward {
    explicit forward(boost::asio::cancellation_signal* s) : to(s) {}
    void operator()(boost::asio::cancellation_type type) const { to->emit(type); }
    boost::asio::cancellation_signal* to;
  };
  template <class H>
  struct holder final : base {
    template <class A>
    explicit holder(A&& a) : h(std::forward<A>(a)), slot(boost::asio::get_associated_cancellation_slot(h)) {
      if (slot.is_connected()) {
        slot.template emplace<forward>(&signal);
        forwarding = true;
      }
    }
    // The handler's slot no longer points here (a cancellation after the completion finds nothing).
    ~holder() override {
      if (forwarding) slot.clear();
    }
    void call_and_free(boost::beast::error_code ec, std::size_t n) override {
      H local(std::move(h));
      delete this;
      local(ec, n);
    }
    H h;
    boost::asio::associated_cancellation_slot_t<H> slot;
  };
  executor_type ex_;
  std::unique_ptr<base> p_;
};

template <class Next>
class tls_or_plain {
 public:
  using next_layer_type = Next;
  using tls_type = boost::beast::ssl_stream<Next>;
  using executor_type = typename Next::executor_type;
  static constexpr std::size_t max_buffers = 16;

  // Plain: Next made from arg (a socket, or an executor or io_context).
  template <class Arg>
    requires(!std::is_same_v<std::remove_cvref_t<Arg>, tls_or_plain>)
  explicit tls_or_plain(Arg&& arg) : s_(std::in_place_index<0>, std::forward<Arg>(arg)) {}
  // TLS over Next made from arg.
  template <class Arg>
  tls_or_plain(Arg&& arg, boost::asio::ssl::context& ctx) : s_(std::in_place_index<1>, std::forward<Arg>(arg), ctx) {}

  // The TLS layer, or nullptr on a plain stream.
  tls_type* tls() { return std::get_if<1>(&s_); }

  // What beast::get_lowest_layer follows: Next in both cases.
  Next& next_layer() {
    if (auto* t = tls()) return t->next_layer();
    return std::get<0>(s_);
  }

  executor_type get_executor() {
    return std::visit([](auto& s) { return s.get_executor(); }, s_);
  }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& b) {
          io_handler h(std::move(handler), get_executor());
          read_some(b, std::move(h));
        },
        token, buffers);
  }

  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          io_handler h(std::move(handler), get_executor());
          write_some(b, std::move(h));
        },
        token, buffers);
  }

  // The WebSocket close: TLS's close_notify where there is TLS, then the TCP shutdown, as for
  // websocket::stream<ssl_stream<Next>> and websocket::stream<Next>.
  friend void teardown(boost::beast::role_type role, tls_or_plain& s, boost::beast::error_code& ec) {
    s.teardown_erased(role, ec);
  }
  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type role, tls_or_plain& s, TeardownHandler&& handler) {
    // The lambda has no executor of its own: the handler's is the fallback, so the close above
    // resumes (and may call its own handler directly) on it.
    const auto ex = boost::asio::get_associated_executor(handler, s.get_executor());
    io_handler h(
        [inner = std::forward<TeardownHandler>(handler)](boost::beast::error_code ec, std::size_t) mutable {
          inner(ec);
        },
        ex);
    s.async_teardown_erased(role, std::move(h));
  }

 private:
  // The first max_buffers buffers of a sequence, held by value (the operation below copies it).
  template <class Buffer>
  struct buffer_list {
    std::array<Buffer, max_buffers> b;
    std::size_t n = 0;
    const Buffer* begin() const { return b.data(); }
    const Buffer* end() const { return b.data() + n; }
  };
  template <class Buffer, class Sequence>
  static buffer_list<Buffer> first_buffers(const Sequence& seq) {
    buffer_list<Buffer> out;
    for (auto it = boost::asio::buffer_sequence_begin(seq), end = boost::asio::buffer_sequence_end(seq);
         it != end && out.n < max_buffers; ++it)
      out.b[out.n++] = Buffer(*it);
    return out;
  }
  template <class Sequence>
  void read_some(const Sequence& seq, io_handler h) {
    read_erased(first_buffers<boost::asio::mutable_buffer>(seq), std::move(h));
  }
  template <class Sequence>
  void write_some(const Sequence& seq, io_handler h) {
    write_erased(first_buffers<boost::asio::const_buffer>(seq), std::move(h));
  }

  // In tls_or_plain.cpp, compiled once for each Next.
  void read_erased(const buffer_list<boost::asio::mutable_buffer>& b, io_handler h);
  void write_erased(const buffer_list<boost::asio::const_buffer>& b, io_handler h);
  void teardown_erased(boost::beast::role_type role, boost::beast::error_code& ec);
  void async_teardown_erased(boost::beast::role_type role, io_handler h);

  std::variant<Next, tls_type> s_;
};

extern template class tls_or_plain<boost::asio::ip::tcp::socket>;
extern template class tls_or_plain<boost::beast::tcp_stream>;

}  // namespace pipekit::net
