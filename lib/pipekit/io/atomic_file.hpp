#pragma once
#include <string>
#include <string_view>

namespace pipekit::io {

// Replaces the file at `path` with `text` so that a crash at any moment leaves either the old
// file or the new one, never a mix: the text goes to a temporary file in the same directory
// (`path`.tmp.<pid>), which is fsynced and renamed over `path`; then the directory is fsynced.
// Returns an empty string on success, else what failed ("cannot write x.tmp.42: No space left
// on device"); the temporary file is removed then. For state files: checkpoints, metadata.
std::string write_file_atomic(const std::string& path, std::string_view text);

}  // namespace pipekit::io
