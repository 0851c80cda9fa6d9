#pragma once
#include <string>
#include <string_view>

namespace pipekit::log {

// The one escaping of log text, applied by log::write to every message, so text a peer chose
// (topic names, IDENTIFY fields, error texts that quote them) can never put a control character
// or invalid UTF-8 into a log line, and no call site has to remember it: CR, LF and tab as \r \n
// \t, every other control character (C0, DEL, and C1 as UTF-8) and every byte that is not part of
// valid UTF-8 as \xNN; valid UTF-8 and printable ASCII (backslash included) stay as they are.
std::string escape(std::string_view text);

}  // namespace pipekit::log
