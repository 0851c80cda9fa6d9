#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pipekit::io {

class line_writer;

// Reports input lines that could not be used. Each one is logged on stderr as
// "<tool>: <source>:<line>: <error>" and, with --rejects FILE, also written there as
// {"source":"stdin","line":42,"code":"invalid_json","error":"...","input":"..."}.
// Nothing is skipped in silence; count() tells the caller to exit 65 at the end.
class rejects {
 public:
  rejects();  // log only
  explicit rejects(const std::string& path);  // log, and JSON Lines to path
  // Log, and JSON Lines into a writer the program also writes its results to (--rejects -),
  // so records and results stay in input order. REQUIRES: shared outlives this object.
  explicit rejects(line_writer& shared);
  rejects(rejects&&) noexcept;
  ~rejects();

  // Returns false once the rejects output has gone (EPIPE): stop, as for stdout.
  bool add(std::string_view source, std::uint64_t line, std::string_view code, std::string_view error,
           std::string_view input);
  std::uint64_t count() const { return count_; }
  void flush();

 private:
  std::unique_ptr<line_writer> own_;
  line_writer* out_ = nullptr;
  std::uint64_t count_ = 0;
};

}  // namespace pipekit::io
