// nsq-broker's messages: the clocks they are stamped with and their encoding for a backend queue.
#include "pipekit/broker/message_internal.hpp"

#include <chrono>

namespace pipekit::broker {

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_message(const message& m) {
  std::string out;
  encode_message_into(m, out);
  return out;
}

void encode_message_into(const message& m, std::string& out) {
  out.resize(message_header_length + m.body.size());
  put_u64(out.data(), static_cast<std::uint64_t>(m.timestamp_ns));
  out[8] = static_cast<char>(m.attempts >> 8);
  out[9] = static_cast<char>(m.attempts);
  auto id = make_message_id(m.id);
  std::memcpy(out.data() + 10, id.data(), msg_id_length);
  if (m.body.size()) std::memcpy(out.data() + message_header_length, m.body.view().data(), m.body.size());
}

bool decode_message(std::string_view bytes, message& m) {
  message_view v;
  if (!parse_message(bytes, v) || !parse_message_id(v.id, m.id)) return false;
  m.timestamp_ns = v.timestamp_ns;
  m.attempts = v.attempts;
  m.defer_until_ns = 0;
  m.body = body_ref::copy_of(v.body);
  return true;
}

}  // namespace pipekit::broker
