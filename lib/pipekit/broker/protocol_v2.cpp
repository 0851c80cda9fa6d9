// A TCP client of the broker (nsqd's protocol_v2.go): commands read in batches and run, answers
// and messages framed into one output buffer, heartbeats and deadlines on one timer.
#include <algorithm>
#include <limits>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/broker/auth.hpp"
#include "pipekit/broker/server_internal.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::broker {

namespace {
constexpr std::size_t read_chunk = 64 * 1024;
// Decompressed input handed to the command parser per turn of the event loop (a deflate bomb
// of 61 KB is 60 MB of commands: decoded and run a part at a time, other clients between).
constexpr std::size_t max_decoded_per_turn = 256 * 1024;
// Output a client has not taken yet beyond which its commands are not read (nsqd's writes block
// its reads; a client that pipelines commands and never reads must not grow the broker's memory).
constexpr std::size_t max_pending_output = 1024 * 1024;
}  // namespace

connection::~connection() = default;

// Decodes compressed input onto the end of the commands in in_: at most max_decoded_per_turn
// bytes; the rest stays in the decoder and read() decodes it in a later turn of the event loop.
bool connection::decode_into_input(std::string_view data) {
  in_.resize(in_len_);
  const bool ok = codec_.decoder->decode(data, in_, max_decoded_per_turn);
  in_len_ = in_.size();
  if (!ok) log::warn("TCP: client({}): {}; closing", info.remote_address, codec_.decoder->error());
  return ok;
}

connection::connection(server::impl& b, tcp::socket socket, std::uint64_t id)
    : b_(b), socket_(std::move(socket)), timer_(b.io), in_(read_chunk, '\0') {
  info.id = id;
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) info.remote_address = util::host_port{ep.address().to_string(), ep.port()}.to_string();
  info.connect_ts = wall_ns() / 1000000000;
  info.heartbeat_ms = b.opts.client_timeout.count() / 2;
  info.output_buffer_size = b.opts.output_buffer_size;
  info.output_buffer_timeout_ms = b.opts.output_buffer_timeout.count();
  info.msg_timeout_ms = b.opts.msg_timeout.count();
  heartbeat_ns_ = info.heartbeat_ms * ns_per_ms;
  msg_timeout_ns_ = info.msg_timeout_ms * ns_per_ms;
  flush_at_ = static_cast<std::size_t>(info.output_buffer_size);
}

void connection::start() {
  log::debug("TCP: new client({})", info.remote_address);
  command_since_ns_ = steady_ns();
  next_heartbeat_ns_ = command_since_ns_ + heartbeat_ns_;
  arm_timer();
  read();
}

void connection::read() {
  if (closed_ || fatal_) return;
  if (codec_ && codec_.decoder->has_pending()) {
    // Input already read decodes to more: the next part in its own turn, before reading more.
    asio::post(b_.io, [self = shared_from_this()] {
      if (self->closed_ || self->fatal_) return;
      std::size_t before = self->in_len_;
      if (!self->decode_into_input({})) return self->close();
      std::size_t got = self->in_len_ - before;
      self->in_len_ = before;
      self->on_read(got);
    });
    return;
  }
  if (codec_) {
    raw_.resize(read_chunk);
    read_some(asio::buffer(raw_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return self->close();
      if (self->closed_) return;
      std::size_t before = self->in_len_;
      if (!self->decode_into_input(std::string_view(self->raw_.data(), n))) return self->close();
      std::size_t got = self->in_len_ - before;
      self->in_len_ = before;
      self->on_read(got);
    });
    return;
  }
  if (in_.size() - in_len_ < read_chunk / 4) in_.resize(std::max(in_.size() * 2, in_len_ + read_chunk));
  read_some(asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) {
                              if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
                                  ec != asio::error::connection_reset)
                                log::debug("TCP: client({}): read: {}", self->info.remote_address, ec.message());
                              self->close();
                              return;
                            }
                            self->on_read(n);
                          });
}

void connection::on_read(std::size_t n) {
  if (closed_) return;
  if (in_len_ == 0 && heartbeat_ns_ <= 0) command_since_ns_ = steady_ns();  // its first byte
  in_len_ += n;
  if (!magic_ok_) {
    if (in_len_ < 4) return read();
    if (std::string_view(in_.data(), 4) != magic_v2) {
      log::warn("TCP: client({}) bad protocol magic", info.remote_address);
      out_.clear();
      append_frame(out_, frame_type::error, "E_BAD_PROTOCOL");
      fatal_ = true;
      flush();
      return;
    }
    magic_ok_ = true;
    command_since_ns_ = steady_ns();
    std::memmove(in_.data(), in_.data() + 4, in_len_ - 4);
    in_len_ -= 4;
  }
  process_input();
}

void connection::process_input() {
  std::size_t pos = parse_input();
  if (tls_pending_ && !closed_) return after_identify_tls(pos);
  while (switch_input_ && !closed_ && !fatal_) {
    // IDENTIFY started compression: what follows it in the buffer is already compressed.
    switch_input_ = false;
    std::string rest(in_.data() + pos, in_len_ - pos);
    in_len_ = 0;
    if (!decode_into_input(rest)) return close();
    pos = parse_input();
  }
  if (closed_) return;
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
    command_since_ns_ = steady_ns();  // the next command's time starts
  }
  if (heartbeat_ns_ <= 0) arm_timer();  // no heartbeat timer runs: a partial command needs its deadline
  if (auth_pending_) return request_flush();
  if (pending_output() >= max_pending_output && !fatal_) {
    paused_for_output_ = true;  // resume_after_output() reads on once the client has taken half
    return flush();
  }
  request_flush();
  read();
}

void connection::resume_after_output() {
  if (!paused_for_output_ || closed_ || pending_output() >= max_pending_output / 2) return;
  paused_for_output_ = false;
  command_since_ns_ = steady_ns();  // as nsqd: its read deadline is set once the blocked write is done
  process_input();
}

// Parses and runs the commands in in_; returns the bytes they took.
std::size_t connection::parse_input() {
  std::size_t pos = 0;
  parse_context ctx;
  while (pos < in_len_ && !fatal_ && !closed_ && !switch_input_ && !auth_pending_ && !tls_pending_ &&
         pending_output() < max_pending_output) {
    if (b_.opts.tls_required != tls_required_mode::no && !info.tls &&
        tls_refuses(std::string_view(in_.data() + pos, in_len_ - pos)))
      break;
    ctx.state = info.state;
    ctx.heartbeats_enabled = heartbeat_ns_ > 0;
    parse_result r = parse_command(std::string_view(in_.data() + pos, in_len_ - pos), b_.limits, ctx);
    if (r.status == parse_status::need_more) break;
    if (r.status == parse_status::error) {
      fail(r.err);
      break;
    }
    if (auth_expired() && (r.cmd.type == command_type::pub || r.cmd.type == command_type::mpub ||
                           r.cmd.type == command_type::dpub || r.cmd.type == command_type::sub)) {
      query_auth(true);  // the command runs again, parsed anew, once the auth server answered
      break;
    }
    pos += r.consumed;
    if (!handle(r.cmd)) break;
  }
  return pos;
}

bool connection::handle(const command& cmd) {
  switch (cmd.type) {
    case command_type::nop:
      return true;
    case command_type::pub:
    case command_type::mpub:
    case command_type::dpub:
      if (check_auth(cmd)) pub(cmd);
      return !fatal_;
    case command_type::identify:
      identify(cmd);
      return !fatal_;
    case command_type::auth:
      auth(cmd);
      return !fatal_ && !auth_pending_;
    case command_type::sub:
      if (check_auth(cmd)) subscribe(cmd);
      return !fatal_;
    case command_type::rdy:
      if (cmd.ignored) return true;
      info.ready_count = cmd.count;
      if (sub_) b_.deliver(*sub_);
      return true;
    case command_type::cls:
      info.ready_count = 0;
      info.state = client_state::closing;
      respond("CLOSE_WAIT");
      return true;
    case command_type::fin:
    case command_type::req:
    case command_type::touch:
      fin_req_touch(cmd);
      return !fatal_;
  }
  return true;
}

void connection::pub(const command& cmd) {
  topic& t = b_.get_topic(cmd.topic);
  bool ok = true;
  if (cmd.type == command_type::mpub) {
    body_ref block = body_ref::copy_of(cmd.body);
    const std::int64_t now = wall_ns();  // one clock read per MPUB
    for_each_mpub_message(block.view(), [&](std::string_view body) {
      if (ok) ok = b_.put(t, b_.new_message(block.slice(body), 0, now));
    });
  } else {
    ok = b_.put(t, b_.new_message(body_ref::copy_of(cmd.body), cmd.timeout_ms));
  }
  if (!b_.flush_dirty()) ok = false;
  if (!ok) {
    const char* name = cmd.type == command_type::pub ? "PUB" : cmd.type == command_type::mpub ? "MPUB" : "DPUB";
    fail(client_error{std::string("E_") + name + "_FAILED", std::string(name) + " failed writing to disk", true});
    return;
  }
  auto counted = info.pub_counts.find(cmd.topic);
  if (counted == info.pub_counts.end()) counted = info.pub_counts.emplace(std::string(cmd.topic), 0).first;
  counted->second += cmd.type == command_type::mpub ? cmd.messages : 1;
  b_.pump(t);
  if (b_.opts.durable && !t.ephemeral) {
    if (!t.queue.backend().on_disk()) {  // its disk queue could not be opened: never a false OK
      const char* name = cmd.type == command_type::pub ? "PUB" : cmd.type == command_type::mpub ? "MPUB" : "DPUB";
      fail(client_error{std::string("E_") + name + "_FAILED", std::string(name) + " failed writing to disk", true});
      return;
    }
    if (held_count_++ == 0) b_.hold_for_sync(*this);
    hold_response("OK");
    return;
  }
  respond("OK");
}

void connection::hold_response(std::string_view data) { append_frame(held_, frame_type::response, data); }

void connection::release_held(bool synced) {
  held_count_ = 0;
  if (closed_) return;
  if (!synced) {
    held_.clear();
    close();
    return;
  }
  frames() += held_;
  held_.clear();
  request_flush();
}

void connection::identify(const command& cmd) {
  identify_data d;
  client_error err;
  if (!parse_identify(cmd.body, b_.id_limits, d, err)) return fail(err);
  info.client_id = d.client_id;
  info.hostname = d.hostname;
  info.user_agent = d.user_agent;
  if (d.heartbeat_interval == -1) info.heartbeat_ms = 0;
  else if (d.heartbeat_interval > 0) info.heartbeat_ms = d.heartbeat_interval;
  if (d.output_buffer_timeout == -1) info.output_buffer_timeout_ms = 0;
  else if (d.output_buffer_timeout > 0) info.output_buffer_timeout_ms = d.output_buffer_timeout;
  if (d.output_buffer_size == -1) {  // nsqd: no buffering, so no buffer timeout either
    info.output_buffer_size = 1;
    info.output_buffer_timeout_ms = 0;
  } else if (d.output_buffer_size > 0) {
    info.output_buffer_size = d.output_buffer_size;
  }
  if (d.msg_timeout > 0) info.msg_timeout_ms = d.msg_timeout;
  info.sample_rate = d.sample_rate;
  heartbeat_ns_ = info.heartbeat_ms * ns_per_ms;
  msg_timeout_ns_ = info.msg_timeout_ms * ns_per_ms;
  flush_at_ = static_cast<std::size_t>(info.output_buffer_size);
  next_heartbeat_ns_ = steady_ns() + heartbeat_ns_;
  timer_.cancel();
  arm_timer();
  if (!d.feature_negotiation) return respond("OK");
  if (d.deflate && d.snappy)
    return fail(client_error{"E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression", true});
  // Compression and TLS are negotiated once (nsqd takes IDENTIFY only in its first state).
  const bool deflate = d.deflate && !codec_;
  const bool snappy = d.snappy && !codec_;
  const bool tls = d.tls_v1 && b_.tls && !tls_ && !tls_pending_ && !holding();
  // nsqd: 6 unless deflate is on and a level asked for, at most --max-deflate-level; reported
  // also when deflate is off.
  std::int64_t level = deflate && d.deflate_level > 0 ? d.deflate_level : 6;
  level = std::min<std::int64_t>(level, max_deflate_level);
  // nsqd's response.
  nlohmann::json r = {
      {"max_rdy_count", b_.opts.max_rdy_count},
      {"version", nsq_version},
      {"max_msg_timeout", b_.opts.max_msg_timeout.count()},
      {"msg_timeout", info.msg_timeout_ms},
      {"tls_v1", tls},
      {"deflate", deflate},
      {"deflate_level", level},
      {"max_deflate_level", max_deflate_level},
      {"snappy", snappy},
      {"sample_rate", info.sample_rate},
      {"auth_required", !b_.opts.auth_http_addresses.empty()},
      {"output_buffer_size", info.output_buffer_size},
      {"output_buffer_timeout", info.output_buffer_timeout_ms},
  };
  respond(r.dump());
  if (tls) {
    begin_tls();      // the response above goes out in plain text, the rest through TLS
    respond("OK");    // the first frame inside TLS
  }
  if (!deflate && !snappy) return;
  // As nsqd: the response goes out as it is, then both directions switch, and an OK is the first
  // compressed frame. nsqd puts TLS first, then snappy or deflate on top: so here.
  try {
    codec_ = snappy ? make_snappy_codec() : make_deflate_codec(static_cast<int>(level));
  } catch (const std::exception& e) {
    return fail(client_error{"E_IDENTIFY_FAILED", std::string("IDENTIFY failed ") + e.what(), true});
  }
  log::debug("TCP: client({}) upgrading connection to {}", info.remote_address, snappy ? "snappy" : "deflate");
  info.deflate = deflate;
  info.snappy = snappy;
  switch_input_ = true;
  respond("OK");  // staged: the first compressed frame
}

void connection::subscribe(const command& cmd) {
  topic& t = b_.get_topic(cmd.topic);
  channel& c = b_.get_channel(t, cmd.channel);
  b_.add_consumer(c, *this);
  info.state = client_state::subscribed;
  respond("OK");
}

void connection::fin_req_touch(const command& cmd) {
  const char* name = cmd.type == command_type::fin ? "FIN" : cmd.type == command_type::req ? "REQ" : "TOUCH";
  std::uint64_t id = 0;
  channel* c = sub_;
  auto not_ok = [&](const char* why) {
    // Not fatal: the client may have lost a race with a timeout.
    fail(client_error{std::string("E_") + name + "_FAILED",
                      std::string(name) + " " + std::string(cmd.id) + " failed " + why, false});
  };
  if (!c || !parse_message_id(cmd.id, id)) return not_ok("ID not in flight");
  auto it = c->in_flight.find(id);
  if (it == c->in_flight.end()) return not_ok("ID not in flight");
  if (it->second.client_id != info.id) return not_ok("client does not own message");
  const std::int64_t now = steady_ns();
  if (cmd.type == command_type::touch) {
    std::int64_t deadline = now + msg_timeout_ns_;
    std::int64_t cap = it->second.delivered_ns + b_.opts.max_msg_timeout.count() * ns_per_ms;
    if (deadline > cap) deadline = cap;
    it->second.deadline_ns = deadline;
    c->in_flight_pq.push({deadline, id});
    return;
  }
  message m = std::move(it->second.msg);
  c->in_flight.erase(it);
  --info.in_flight_count;
  if (cmd.type == command_type::fin) {
    c->queue.release(m);
    ++info.finish_count;
  } else {
    if (cmd.clamped)
      log::info("TCP: client({}): REQ timeout out of range 0-{} ms; set to {} ms (as nsqd)", info.remote_address,
                b_.opts.max_req_timeout.count(), cmd.timeout_ms);
    ++info.requeue_count;
    ++c->requeue_count;
    if (cmd.timeout_ms > 0) m.defer_until_ns = now + cmd.timeout_ms * ns_per_ms;
    b_.put_channel(*c, std::move(m));
  }
  b_.deliver(*c);
}

void connection::send_message(channel& c, message&& m) {
  ++m.attempts;
  if (info.sample_rate > 0 && static_cast<std::int64_t>(std::rand() % 100) > info.sample_rate) {
    c.queue.release(m);  // sampled out: done with, as nsqd does
    return;
  }
  const std::int64_t now = steady_ns();
  append_message_frame(frames(), m.timestamp_ns, m.attempts, make_message_id(m.id), m.body.view());
  ++info.in_flight_count;
  ++info.message_count;
  std::uint64_t id = m.id;
  std::int64_t deadline = now + msg_timeout_ns_;
  c.in_flight.insert_or_assign(id, in_flight_entry{std::move(m), info.id, deadline, now});
  c.in_flight_pq.push({deadline, id});
  if (frames().size() >= flush_at_) flush();
  else request_flush();
}

void connection::respond(std::string_view data) {
  if (holding()) return hold_response(data);  // behind a publish waiting for its sync
  append_frame(frames(), frame_type::response, data);
  request_flush();
}

void connection::fail(const client_error& err) {
  if (err.fatal) log::warn("TCP: client({}): {}", info.remote_address, err.wire());
  else log::debug("TCP: client({}): {}", info.remote_address, err.wire());
  if (holding() && !err.fatal) {
    append_frame(held_, frame_type::error, err.wire());
    return;
  }
  append_frame(frames(), frame_type::error, err.wire());
  if (err.fatal) {
    fatal_ = true;
    flush();
  } else {
    request_flush();
  }
}

void connection::request_flush() {
  if (flush_posted_ || closed_) return;
  flush_posted_ = true;
  asio::post(b_.io, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void connection::flush() {
  if (closed_ || write_pending_) return;
  if (tls_pending_) {
    // The IDENTIFY response goes out in plain text; once written, the handshake starts.
    if (tls_plain_.empty()) return start_tls_handshake();
    write_pending_ = true;
    write_since_ns_ = steady_ns();
    writing_.swap(tls_plain_);
    tls_plain_.clear();
    write_all(asio::buffer(writing_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
      self->on_write(ec);
    });
    return;
  }
  if (codec_ && (!stage_.empty() || finish_stream_)) {
    if (!stage_.empty()) codec_.encoder->encode(stage_, out_);
    if (finish_stream_) codec_.encoder->finish(out_);
    finish_stream_ = false;
    stage_.clear();
  }
  if (out_.empty()) {
    if (fatal_) close();
    return;
  }
  write_pending_ = true;
  write_since_ns_ = steady_ns();
  if (heartbeat_ns_ <= 0) arm_timer();  // the write deadline
  writing_.swap(out_);
  write_all(asio::buffer(writing_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     self->on_write(ec);
                   });
}

void connection::on_write(const boost::system::error_code& ec) {
  write_pending_ = false;
  writing_.clear();
  if (ec) {
    if (ec != asio::error::operation_aborted)
      log::debug("TCP: client({}): write: {}", info.remote_address, ec.message());
    close();
    return;
  }
  flush();
  resume_after_output();
}

std::int64_t connection::write_timeout_ns() const noexcept {
  return heartbeat_ns_ > 0 ? heartbeat_ns_ : b_.opts.client_timeout.count() * ns_per_ms;  // nsqd: the heartbeat interval
}

std::int64_t connection::read_deadline_ns() const noexcept {
  if (closed_ || fatal_ || paused_for_output_ || auth_pending_ || tls_pending_) return 0;
  if (heartbeat_ns_ > 0) return command_since_ns_ + 2 * heartbeat_ns_;
  if (in_len_ > 0 || !magic_ok_) return command_since_ns_ + b_.opts.client_timeout.count() * ns_per_ms;
  return 0;  // heartbeats off: an idle client may stay, as with nsqd
}

void connection::arm_timer() {
  if (closed_) return;
  std::int64_t at = std::numeric_limits<std::int64_t>::max();
  if (heartbeat_ns_ > 0 && !fatal_) at = next_heartbeat_ns_;
  if (std::int64_t read_at = read_deadline_ns()) at = std::min(at, read_at);
  if (write_pending_) at = std::min(at, write_since_ns_ + write_timeout_ns());
  if (at == std::numeric_limits<std::int64_t>::max()) return;
  timer_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(at - steady_ns(), 0)));
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->on_timer();
  });
}

void connection::on_timer() {
  if (closed_) return;
  const std::int64_t now = steady_ns();
  if (write_pending_ && now >= write_since_ns_ + write_timeout_ns()) {
    log::warn("TCP: client({}) did not read its output for {} ms ({} bytes waiting); closing", info.remote_address,
              write_timeout_ns() / ns_per_ms, pending_output());
    return close();
  }
  const std::int64_t read_at = read_deadline_ns();
  if (read_at && now >= read_at) {
    // A client that stalls mid-command gets the error nsqd gives for the read it was in.
    parse_context ctx{info.state, true};
    std::size_t skip = magic_ok_ ? 0 : in_len_;
    parse_result r = parse_command(std::string_view(in_.data() + skip, in_len_ - skip), b_.limits, ctx);
    if (in_len_ > 0)
      log::warn("TCP: client({}) timed out: a command not complete within {} ms", info.remote_address,
                (read_at - command_since_ns_) / ns_per_ms);
    else
      log::warn("TCP: client({}) timed out after {} ms without a command", info.remote_address,
                (read_at - command_since_ns_) / ns_per_ms);
    if (r.status == parse_status::need_more && !r.err.empty()) fail(r.err);
    else {
      fatal_ = true;
      flush();
    }
    return arm_timer();  // the write deadline still holds for the error
  }
  if (heartbeat_ns_ > 0 && !fatal_ && now >= next_heartbeat_ns_) {
    append_frame(frames(), frame_type::response, heartbeat_body);
    flush();
    next_heartbeat_ns_ = now + heartbeat_ns_;
  }
  arm_timer();
}

void connection::drain() {
  if (closed_) return;
  fatal_ = true;  // no more reading; closes once the output is written
  timer_.cancel();
  if (codec_) finish_stream_ = true;
  flush();
}

void connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  auto self = shared_from_this();
  if (sub_) b_.remove_consumer(*sub_, *this);
  b_.connections.erase(info.id);
  if (b_.stopping && b_.connections.empty()) b_.stop_timer.cancel();
  log::debug("TCP: client({}) closed", info.remote_address);
}

}  // namespace pipekit::broker
