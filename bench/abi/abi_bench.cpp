// ABI encode+decode throughput of pipekit::eth on a corpus from gen_corpus.mjs, to compare with
// abi_ethers.mjs on the same corpus (bench/abi/run.sh runs both).
//
//   abi_bench CORPUS.jsonl [SECONDS]
//
// Each case's signature is parsed once, before timing; one operation is then one encode of the
// case's JSON arguments plus one decode of the result back to JSON, as abi_ethers.mjs measures.
// Before timing, every case is checked: decode(encode(args)) encodes to the same bytes.
// Last line: "ops_per_sec N".
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/eth/abi.hpp"

namespace {

namespace eth = pipekit::eth;
using clock_type = std::chrono::steady_clock;

struct bench_case {
  std::string name;
  eth::abi_function fn;
  nlohmann::json args;
};

int usage() {
  std::fprintf(stderr, "usage: abi_bench CORPUS.jsonl [SECONDS]\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) return usage();
  const double seconds = argc == 3 ? std::strtod(argv[2], nullptr) : 3.0;
  if (!(seconds > 0)) return usage();

  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "abi_bench: %s: cannot open\n", argv[1]);
    return 66;
  }
  std::vector<bench_case> cases;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("sig") || !j.contains("args")) {
      std::fprintf(stderr, "abi_bench: %s:%zu: not a corpus line\n", argv[1], lineno);
      return 65;
    }
    try {
      bench_case c{j.value("name", ""), eth::parse_signature(j["sig"].get<std::string>()), std::move(j["args"])};
      // Round trip once: the timed loop below must do real work, not throw.
      const eth::bytes data = eth::encode(c.fn.inputs, c.args);
      const nlohmann::json back = eth::decode(c.fn.inputs, data);
      if (eth::encode(c.fn.inputs, back) != data) {
        std::fprintf(stderr, "abi_bench: %s:%zu (%s): decode(encode(args)) does not encode the same\n", argv[1],
                     lineno, c.name.c_str());
        return 70;
      }
      cases.push_back(std::move(c));
    } catch (const eth::abi_error& e) {
      std::fprintf(stderr, "abi_bench: %s:%zu: %s\n", argv[1], lineno, e.what());
      return 65;
    }
  }
  if (cases.empty()) {
    std::fprintf(stderr, "abi_bench: %s: no cases\n", argv[1]);
    return 65;
  }

  std::size_t sink = 0;
  auto pass = [&] {
    for (const auto& c : cases) {
      const eth::bytes data = eth::encode(c.fn.inputs, c.args);
      const nlohmann::json back = eth::decode(c.fn.inputs, data);
      sink += data.size() + back.size();
    }
  };

  // Warm up for a fifth of the time (caches, allocator), then measure whole passes.
  const auto warm_end = clock_type::now() + std::chrono::duration<double>(seconds / 5);
  while (clock_type::now() < warm_end) pass();
  std::size_t passes = 0;
  const auto t0 = clock_type::now();
  double elapsed = 0;
  do {
    pass();
    ++passes;
    elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (elapsed < seconds);

  const double ops = static_cast<double>(passes * cases.size()) / elapsed;
  std::printf("pipekit::eth: %zu cases x %zu passes in %.2f s (sink %zu)\n", cases.size(), passes, elapsed,
              sink % 1000);
  std::printf("ops_per_sec %.0f\n", ops);
  return 0;
}
