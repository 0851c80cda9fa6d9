// libFuzzer target for the snappy framing decoder (lib/pipekit/nsq/compress.cpp): the bytes a client
// sends after IDENTIFY negotiated snappy. Input: byte 0 seeds how the rest is split into reads; the
// rest is the stream. Errors are expected outcomes; crashes, out-of-bounds access, a decode that
// depends on where the reads split, or a re-encoded output that does not decode back are findings.
//
//   make -f Makefile.dist fuzz       (builds with the SNAPPY_FUZZ_SOURCES list, runs with corpus_snappy)
#include "pipekit/nsq/compress.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "finding: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size < 1) return 0;
  unsigned seed = data[0];
  std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string whole;
  auto d1 = pipekit::nsq::make_snappy_decoder();
  const bool ok1 = d1->decode(wire, whole);

  std::string split;
  auto d2 = pipekit::nsq::make_snappy_decoder();
  bool ok2 = true;
  for (std::string_view rest = wire; !rest.empty() && ok2;) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(1 + (seed >> 16) % 97, rest.size());
    ok2 = d2->decode(rest.substr(0, n), split);
    rest.remove_prefix(n);
  }
  if (ok1 != ok2) finding("the verdict depends on the read boundaries");
  if (ok1 && whole != split) finding("the output depends on the read boundaries");

  if (ok1) {
    std::string again, back;
    pipekit::nsq::make_snappy_encoder()->encode(whole, again);
    if (!pipekit::nsq::make_snappy_decoder()->decode(again, back) || back != whole) finding("re-encoding does not round trip");
  }
  return 0;
}
