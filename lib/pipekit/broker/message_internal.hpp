#pragma once
// nsq-broker's message (nsqd's message.go): a body shared between channels, and the encoding a
// backend queue stores. Single-threaded: touched only from the broker's io_context thread.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "pipekit/broker/disk_queue.hpp"
#include "pipekit/nsq/compress.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/nsq/protocol.hpp"

namespace pipekit::broker {

// The wire (lib/pipekit/nsq) as the broker's code names it.
using nsq::append_command;
using nsq::append_frame;
using nsq::append_message_frame;
using nsq::client_error;
using nsq::client_state;
using nsq::command;
using nsq::command_type;
using nsq::for_each_mpub_message;
using nsq::frame_type;
using nsq::get_u32;
using nsq::heartbeat_body;
using nsq::identify_data;
using nsq::identify_limits;
using nsq::is_ephemeral;
using nsq::is_valid_channel_name;
using nsq::is_valid_topic_name;
using nsq::magic_v2;
using nsq::make_deflate_codec;
using nsq::make_message_id;
using nsq::make_snappy_codec;
using nsq::message_header_length;
using nsq::message_view;
using nsq::msg_id_length;
using nsq::nsq_version;
using nsq::parse_command;
using nsq::parse_context;
using nsq::parse_identify;
using nsq::parse_limits;
using nsq::parse_message;
using nsq::parse_message_id;
using nsq::parse_result;
using nsq::parse_status;
using nsq::put_u32;
using nsq::put_u64;
using nsq::stream_codec;

inline constexpr std::int64_t ns_per_ms = 1000000;

std::int64_t steady_ns() noexcept;
std::int64_t wall_ns() noexcept;

// A reference-counted byte block (non-atomic: one thread). One PUB or one whole MPUB body is copied
// once into a block; each message, and each channel's copy of it, holds a slice of it.
class body_ref {
 public:
  body_ref() = default;
  static body_ref copy_of(std::string_view bytes) {
    auto* b = static_cast<block*>(std::malloc(sizeof(block) + bytes.size()));
    if (!b) throw std::bad_alloc();
    b->refs = 1;
    if (!bytes.empty()) std::memcpy(b->data(), bytes.data(), bytes.size());
    body_ref r;
    r.b_ = b;
    r.data_ = b->data();
    r.size_ = static_cast<std::uint32_t>(bytes.size());
    return r;
  }
  // A slice of this block (shares it).
  body_ref slice(std::string_view inside) const {
    body_ref r(*this);
    r.data_ = inside.data();
    r.size_ = static_cast<std::uint32_t>(inside.size());
    return r;
  }
  body_ref(const body_ref& o) noexcept : b_(o.b_), data_(o.data_), size_(o.size_) {
    if (b_) ++b_->refs;
  }
  body_ref(body_ref&& o) noexcept : b_(o.b_), data_(o.data_), size_(o.size_) { o.b_ = nullptr; }
  body_ref& operator=(body_ref o) noexcept {
    std::swap(b_, o.b_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~body_ref() {
    if (b_ && --b_->refs == 0) std::free(b_);
  }
  std::string_view view() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

 private:
  struct block {
    std::uint32_t refs;
    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
  };
  block* b_ = nullptr;
  const char* data_ = nullptr;
  std::uint32_t size_ = 0;
};

struct message {
  std::uint64_t id = 0;
  std::int64_t timestamp_ns = 0;
  std::uint16_t attempts = 0;
  std::int64_t defer_until_ns = 0;  // steady clock; 0: deliverable now (DPUB while held by the topic)
  body_ref body;
  // --durable channels: where the message was read from the channel's disk queue; the consumed
  // position is not committed past it until it is FINished or stored again (REQ, timeout).
  disk_position disk_at;
  bool from_disk = false;
};

// nsqd's encoding of a message for a backend queue: [ts i64][attempts u16][16-byte id][body].
std::string encode_message(const message& m);
void encode_message_into(const message& m, std::string& out);
bool decode_message(std::string_view bytes, message& m);

}  // namespace pipekit::broker
