#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipekit/redis/client.hpp"

// Message history: each message for a user is appended once to that user's Redis Stream, so a
// client that was away can log in with "since" (the id of the last message it saw) and get what
// it missed, in order. The stream id is the message's id on the wire.
//
// Key layout (next to routes.hpp's; the user id is the hash tag, so Redis Cluster keeps all of a
// user's keys on one shard):
//   <prefix>user:{<user>}:history   stream, trimmed to about `size` entries (XADD MAXLEN ~) and
//                                   expiring `ttl` after its last entry. Fields: "d" the data as
//                                   JSON text, "r" the sender's own id as JSON text (optional).
namespace pipekit::push {

struct history_options {
  std::size_t size = 1000;                        // entries kept per user; 0: no history
  std::chrono::milliseconds ttl{24 * 3600 * 1000};  // a user's stream expires this long after its last entry
};

std::string history_key(std::string_view prefix, std::string_view user);

// Appends to `cmds` the two commands that store one message for one user: XADD (its reply is the
// stream id) and PEXPIRE. `data` and `ref` are JSON texts; ref may be empty.
void append_history_commands(std::vector<std::vector<std::string>>& cmds, std::string_view prefix,
                             std::string_view user, const history_options& opts, std::string_view data,
                             std::string_view ref);

// The same, written into a pipeline's commands.
void append_history_commands(redis::commands& cmds, std::string_view prefix, std::string_view user,
                             const history_options& opts, std::string_view data, std::string_view ref);

// A stream id "<ms>-<seq>", parsed; nullopt when the text is not one.
struct stream_id {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;
  auto operator<=>(const stream_id&) const = default;
};
std::optional<stream_id> parse_stream_id(std::string_view text);

// What a client receives for one message: {"type":"message","id":..,"data":..[,"ref":..]}.
// id is a JSON text (a stream id as a JSON string, or the sender's id); data and ref JSON texts.
std::string message_frame(std::string_view id_json, std::string_view data_json, std::string_view ref_json);

struct history_page {
  std::string error;                // Redis unreachable or an error reply; then nothing else is set
  std::vector<std::string> frames;  // message frames after `since`, oldest first
  std::string last_id;              // the last entry's id (empty when none)
  bool gap = false;                 // entries after `since` may have been trimmed or expired
};

// Reads a user's messages after `since` (exclusive), at most `max` of them, oldest first, in pages
// of a few hundred. `gap` is set when `since` itself is no longer in the stream: the stream was
// trimmed past it (MAXLEN) or expired, so messages after it may be lost. With since empty: the
// last `max` messages, and no gap. REQUIRES: since is empty or parse_stream_id(since).
void read_history(redis::client& redis, std::string_view prefix, std::string_view user, std::string since,
                  std::size_t max, std::function<void(history_page)> done);

}  // namespace pipekit::push
