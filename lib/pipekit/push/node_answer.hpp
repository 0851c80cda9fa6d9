#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

// push-route's reading of a ws-push node's answer lines (one per message of a POST /push).
namespace pipekit::push {

// The answer to a message that reached every user it was for, exactly as ws-push writes it,
// {"line":N,"delivered":K}: K. nullopt for any other text, which the caller reads as JSON (an
// answer with "offline", "dropped", "id", "history" or "error", or written by another hand).
// Read without a JSON parse: it is the answer to almost every message.
std::optional<std::size_t> delivered_to_all(std::string_view answer);

}  // namespace pipekit::push
