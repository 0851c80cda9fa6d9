#pragma once
#include <cstddef>
#include <string_view>

// Topic and channel names exactly as nsqd and nsqlookupd accept them: 1 to 64 characters of
// [.a-zA-Z0-9_-], optionally ending in "#ephemeral" (counted in the 64).
namespace pipekit::nsq {

constexpr std::size_t max_name_length = 64;
constexpr std::string_view ephemeral_suffix = "#ephemeral";

bool is_valid_topic_name(std::string_view name) noexcept;
bool is_valid_channel_name(std::string_view name) noexcept;

// True when name ends in "#ephemeral" (whether or not the rest is valid).
bool is_ephemeral(std::string_view name) noexcept;

}  // namespace pipekit::nsq
