#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

// Reading a whole file that the user named (an ABI, bytecode, a key, a checkpoint) with a size
// bound, so that /dev/zero, a FIFO fed forever or a huge file is an error, never unbounded memory.
namespace pipekit::io {

// Why a file could not be read. code: exit_code::no_input (66) when it cannot be opened or read
// (missing, a directory, no permission), exit_code::data_error (65) when it is larger than the
// bound. The message says what happened ("cannot open: No such file or directory", "is a
// directory", "larger than 16777216 bytes"); it names neither the path nor anything read from the
// file: callers prefix the flag and the path (when the path is not a secret itself).
class file_error : public std::runtime_error {
 public:
  file_error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }
  // The file was read but is larger than the bound (else it could not be opened or read): for
  // callers that keep exit codes out (lib/pipekit/eth).
  bool too_large() const noexcept;

 private:
  int code_;
};

// The whole file at path, at most max_bytes of it. Throws file_error.
std::string read_file(const std::string& path, std::size_t max_bytes);

// The same into out, which is sized once to max_bytes + 1 and then shrunk (never reallocated):
// a caller that wipes out afterwards leaves no copy of a secret behind. Throws file_error.
void read_file(const std::string& path, std::size_t max_bytes, std::vector<std::uint8_t>& out);

}  // namespace pipekit::io
