#pragma once
// abigen-cpp's generator: typed C++ bindings (a header, optionally a .cpp) from contracts' JSON
// ABIs and bytecode, over pipekit::eth::contract (eth/contract.hpp). The program's flags map onto
// `options`; `run` reads the inputs, generates and writes the outputs atomically. Every problem
// is a fatal_error with its exit code (64 usage, 65 an input that cannot be used, 66 a missing
// or unreadable file, 74 an output that cannot be written) and a message naming the input, the
// place in it (abi[3].name) and the fix.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pipekit::abigen {

// One contract to bind.
struct contract_input {
  std::string name;      // the class name (--type, or the contract's name in combined JSON)
  std::string qualified; // "path:Name" from combined JSON (--alias and --link may use it); else name
  std::string origin;    // where messages point: "calldemo.abi", "out.json: contracts[\"a.sol:A\"]"
  nlohmann::json abi;    // the JSON ABI array
  std::string bytecode;  // creation code, lowercase hex without 0x, libraries linked; empty: none
};

struct generate_options {
  std::string ns;                                            // "calldemo" or "a::b"
  std::vector<std::pair<std::string, std::string>> aliases;  // orig (name or signature) -> new name
  std::string inputs;        // the first comment's "from ...": "calldemo.abi and calldemo.bin"
  std::string version;       // abigen-cpp's version, in the first comment
  std::string split_header;  // non-empty: bodies go to `source`, which includes this header name
};

struct generated {
  std::string header;
  std::string source;  // with split_header only
};

// Throws fatal_error (64 for an alias that names nothing, 65 for a name that cannot be bound).
generated generate(const std::vector<contract_input>& contracts, const generate_options& o);

// Replaces the library link placeholders in `hex` (`__$<34 hex>$__`, keccak256 of "path:Name";
// the old `__path:Name______` form) with addresses. links: "Name" or "path:Name" -> 0x-address;
// known: fully qualified library names to tell a short name's placeholder (combined JSON's keys,
// the "// $..$ -> path:Name" lines solc writes after a .bin). A placeholder left -> fatal_error 65
// naming the library and --link; `where` names the input in messages.
std::string link_bytecode(std::string hex, const std::vector<std::pair<std::string, std::string>>& links,
                          const std::vector<std::string>& known, const std::string& where);

// The program's flags.
struct options {
  std::string abi;            // --abi FILE|-
  std::string bin;            // --bin FILE
  std::string combined_json;  // --combined-json FILE|-
  std::string type;           // --type NAME
  std::string ns;             // --namespace NS
  std::string out = "-";      // --out FILE|-
  std::string split;          // --split FILE.cpp
  std::vector<std::string> contracts, excludes, aliases, links;
};

// Reads, generates, writes; 0 on success (errors are thrown).
int run(const options& o);

}  // namespace pipekit::abigen
