#pragma once
// What ethcall's offline commands share: request fields, ABI files, signatures, and the two
// ways a command runs (one request from its arguments, or one per stdin line).
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/transact.hpp"
#include "pipekit/eth_cli/rpc_flags.hpp"

namespace CLI {
class App;
}

namespace ethcall {

using nlohmann::json;
namespace eth = pipekit::eth;

// A request line that is valid JSON but not a request the command understands.
struct request_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct common_flags {
  std::string rejects;     // stdin mode: JSON reject records also go here ("-" = stdout, in order)
  bool bare_text = false;  // a string result (hex, hash) is printed as text, unless --json
};

// --rejects FILE.
void add_common_flags(CLI::App* sub, common_flags& f);
// --rejects, and --json for commands whose result is hex text, printed bare by default (as cast).
void add_text_result_flags(CLI::App* sub, common_flags& f);

// Fields of a request object. Throw request_error naming the field.
const json& field(const json& req, const char* name);
const std::string& string_field(const json& req, const char* name);
// A bare JSON string, or an object with that string under name.
const std::string& string_or_field(const json& req, const char* name);
// Arguments: a bare array, or {"args": [..] or {..}}.
const json& args_of(const json& req);

// 0x-hex (the prefix is optional) to bytes; errors name `what`.
eth::bytes hex_arg(std::string_view text, std::string_view what);
std::string hex_of(std::span<const std::uint8_t> bytes);

// Bounds of the files ethcall reads (a larger one is an error, exit 65).
constexpr std::size_t max_abi_file = 16u << 20;  // JSON ABI files, --abi and batch's "abi"
constexpr std::size_t max_bin_file = 16u << 20;  // --bin bytecode (hex)

// A revert's data decoded, or {"kind":"undecodable",..} (lib/pipekit/eth/transact.hpp).
using pipekit::eth::revert_of;

// --abi FILE: nullopt when path is empty; 66 when unreadable, 65 when too large or not a valid ABI.
std::optional<eth::abi_file> load_abi(const std::string& path);

// A whole file named by flag, at most max_bytes: fatal 66 when it cannot be read, 65 when larger.
std::string read_input_file(const std::string& path, std::string_view flag, std::size_t max_bytes);

// Parsing a signature is the slow part of a request; stdin mode usually repeats a few.
class signature_cache {
 public:
  const eth::abi_function& get(const std::string& sig);
  // Changes whenever entries were dropped (so references handed out before may dangle).
  std::uint64_t generation() const { return generation_; }

 private:
  std::unordered_map<std::string, eth::abi_function> map_;
  std::uint64_t generation_ = 0;
};

// Command-line ARGS to JSON values: one text per parameter (cast style), or with --json-args
// one JSON array. Throws eth::abi_error.
json cli_args(const std::vector<eth::abi_param>& params, const std::vector<std::string>& texts, bool json_args);

// One request from the command line: prints its result. Errors propagate (abi_error -> 65).
int print_result(const json& result, const common_flags& f);

// One request per stdin line, answered in order by {"id":..,"result":..} lines (or the bare
// result, for record streams). A line that fails is a reject and the rest go on; exit 65 then.
enum class framing { envelope, bare };
int run_lines(const common_flags& f, const std::function<json(const json&)>& handle,
              framing frame = framing::envelope);

// --rpc-url, --rpc-timeout, --max-response-size: the shared flag group (lib/pipekit/eth_cli).
using pipekit::eth_cli::add_rpc_flags;
using pipekit::eth_cli::rpc_flags;

// A block tag or number as JSON-RPC wants it: latest/earliest/pending/safe/finalized or 0x-hex.
// `flag` names the option in the usage error (exit 64).
std::string block_param(const std::string& tag, std::string_view flag = "--block");

}  // namespace ethcall
