#!/usr/bin/env bash
# abigen-cpp fed inputs it cannot bind: each is refused with its exit code (64 usage, 65 data,
# 66 no input) and a message naming the input, the place in it and the fix; a refused run writes
# no output (and leaves an existing one as it was). Names it can make usable (a keyword parameter,
# an unnamed one, one that is no identifier) are made so.
source "$(dirname "$0")/lib.sh"
fx=$PIPEKIT_SRC/tests/fixtures/abigen
ns=(--namespace h)
lacks() { case $2 in *"$3"*) bad "$1" "must not contain: $3" ;; *) ok ;; esac; }
fn() { printf '{"type":"function","name":"%s","inputs":[%s],"outputs":[],"stateMutability":"%s"}' "$1" "$2" "${3:-nonpayable}"; }
param() { printf '{"name":"%s","type":"%s"}' "$1" "$2"; }
abi() { local IFS=,; printf '[%s]' "$*" >"$T/$name.abi"; }

# gen NAME: abigen-cpp on $T/NAME.abi into $T/NAME.hpp (extra flags after NAME).
gen() {
  name=$1
  shift
  run abigen-cpp --abi "$T/$name.abi" --type C "${ns[@]}" --out "$T/$name.hpp" "$@"
}
no_output() { check "$1: no output written" test ! -e "$T/$2.hpp"; }

# ---- files ------------------------------------------------------------------------------------
name=missing
gen missing
expect "missing --abi: 66" 66
expect_err "names the file" "--abi $T/missing.abi"
run abigen-cpp --abi "$T" --type C "${ns[@]}" --out "$T/dir.hpp"
expect "a directory: 66" 66
expect_err "says it is a directory" "is a directory"
run timeout 30 abigen-cpp --abi /dev/zero --type C "${ns[@]}" --out "$T/zero.hpp"
expect "/dev/zero: too large, 65" 65
expect_err "says the bound" "larger than"
: >"$T/empty.abi"
gen empty
expect "an empty file: 65" 65
expect_err "says empty and the fix" "empty.abi: empty input; give the contract's JSON ABI (solc --abi)"
no_output "empty file" empty
printf '  \n\n' >"$T/blank.abi"
gen blank
expect "whitespace only: 65" 65
printf 'not json at all' >"$T/text.abi"
gen text
expect "not JSON: 65" 65
expect_err "says not JSON" "text.abi: not JSON"
printf '{"foo":1}' >"$T/object.abi"
gen object
expect "JSON but no ABI: 65" 65
expect_err "says what an ABI is" "not a JSON ABI"
printf '[]' >"$T/nothing.abi"
gen nothing
expect "an empty ABI: 65" 65
expect_err "says empty ABI" "an empty ABI (no functions, events, errors or constructor)"
no_output "empty ABI" nothing
printf '[{"type":"fallback"}]' >"$T/fallback.abi"
gen fallback
expect "only a fallback: an empty binding, 65" 65

# ---- types --------------------------------------------------------------------------------------
name=unknown; abi "$(fn f "$(param a uint256),$(param b uint7)")"
gen unknown
expect "unknown type uint7: 65" 65
expect_err "names the entry and the type" 'abi[0].inputs[1].type: unknown type "uint7"'
deep='{"name":"x","type":"uint256"}'
for _ in $(seq 70); do deep="{\"name\":\"t\",\"type\":\"tuple\",\"components\":[$deep]}"; done
name=deep; abi "$(fn f "$deep")"
gen deep
expect "tuples nested 70 deep (JSON 140 deep): 65" 65
expect_err "says the depth" "JSON nested deeper than 128 levels"
no_output "deep JSON" deep
arrays=uint256
for _ in $(seq 70); do arrays+="[]"; done
name=deep_arrays; abi "$(fn f "$(param a "$arrays")")"
gen deep_arrays
expect "an array type 70 deep: 65" 65
expect_err "names the entry and the depth" "abi[0].inputs[0]"
no_output "deep arrays" deep_arrays

# ---- names --------------------------------------------------------------------------------------
name=keyword; abi "$(fn register "$(param who address)")"
gen keyword
expect "function named register (a C++ keyword): 65" 65
expect_err "names it, where, and the fix" "abi[0].name: function name \"register\" is a C++ keyword; rename it: --alias 'register(address)=register_'"
gen keyword --alias 'register=enroll'
expect "--alias register=enroll: 0" 0
check "the alias is the method" grep -q 'receipt enroll(const pipekit::eth::signer& from' "$T/keyword.hpp"
check "the ABI keeps the Solidity name" grep -q 'abi().function("register(address)")' "$T/keyword.hpp"

name=member; abi "$(fn abi "")"
gen member
expect "function named abi (a generated member): 65" 65
expect_err "says it clashes" "clashes with a name the generated code uses"

name=callclash; abi "$(fn set "$(param x uint256)")" "$(fn call_set "$(param x uint256)" view)"
gen callclash
expect "set and call_set: 65" 65
expect_err "names both" "function call_set(uint256) (abi[1])"
expect_err "and the fix" "--alias"

name=dup; abi "$(fn Transfer "")" '{"type":"event","name":"Transfer","inputs":[],"anonymous":false}'
gen dup
expect "function and event both Transfer: 65" 65
expect_err "names both" "function Transfer() (abi[0]) and event Transfer() (abi[1]) both need the C++ name Transfer"
expect_err "and the fix" "--alias 'event:Transfer()=Transfer_'"
gen dup --alias 'event:Transfer()=TransferEvent'
expect "--alias event:Transfer()=TransferEvent (a kind-prefixed key): 0" 0
check "the event struct is renamed" grep -q 'struct TransferEvent {' "$T/dup.hpp"

name=notid; abi "$(fn 'f$' "")"
gen notid
expect "a name that is no C++ identifier: 65" 65
expect_err "says so" "is not a C++ identifier"

name=overloads; abi "$(fn f "$(param s string)")" "$(fn f "$(param s fixed128x18)")"
gen overloads
expect "f(string) and f(fixed128x18), both std::string: 65" 65
expect_err "names both and the fix" "f(string) (abi[0]) and f(fixed128x18) (abi[1]) become C++ overloads f() with the same parameter types; rename one: --alias 'f(fixed128x18)=fFixed128x18'"
gen overloads --alias 'f(string)=fString'
expect "with --alias 'f(string)=fString': 0" 0
name=bytes_like; abi "$(fn g "$(param a 'uint8[]')" view)" "$(fn g "$(param b bytes)" view)"
gen bytes_like
expect "g(uint8[]) and g(bytes), both vector<uint8_t>: 65" 65
name=fine_overloads; abi "$(fn g "$(param a uint128)" view)" "$(fn g "$(param b uint256)" view)" "$(fn g "$(param a address)" payable)" "$(fn g "$(param b uint256)")"
gen fine_overloads
expect "uint128/uint256 overloads, views and sends: 0" 0
name=value_clash; abi "$(fn g "" payable)" "$(fn g "$(param b uint256)")"
gen value_clash
expect "payable g() and g(uint256): g(from, value) twice, 65" 65

name=shapes; abi "$(fn f '{"name":"p","type":"tuple","internalType":"struct A.P","components":[{"name":"x","type":"uint256"}]}')" \
  "$(fn g '{"name":"p","type":"tuple","internalType":"struct B.P","components":[{"name":"y","type":"bool"}]}')"
gen shapes
expect "struct P with two shapes: 65" 65
expect_err "names both and --alias" "--alias"
gen shapes --alias 'B.P=BP'
expect "with --alias B.P=BP: 0" 0
check "two structs" test "$(grep -c '^struct ' "$T/shapes.hpp")" = 2

name=params; abi "$(fn f "$(param class uint8),$(param '' bool),$(param 'a\"b\\nc' address),$(param from uint256),$(param value uint256)")"
gen params
expect "parameters: keywords, unnamed, not identifiers, from, value: 0" 0
check "keyword -> class_" grep -q 'std::uint8_t class_' "$T/params.hpp"
check "unnamed -> arg1" grep -q 'bool arg1' "$T/params.hpp"
check "not an identifier -> arg2" grep -q 'address& arg2' "$T/params.hpp"
check "from -> from_" grep -q 'uint256& from_' "$T/params.hpp"
check "value stays value in a nonpayable function" grep -q 'uint256& value,' "$T/params.hpp"

run abigen-cpp --abi "$T/params.abi" --type class "${ns[@]}" --out "$T/kwtype.hpp"
expect "--type class (a keyword): 64" 64
run abigen-cpp --abi "$T/params.abi" --type C --namespace 'a b' --out "$T/kwtype.hpp"
expect "--namespace 'a b': 64" 64

# ---- flags --------------------------------------------------------------------------------------
run abigen-cpp --abi "$fx/Token.abi" --type Token --out "$T/x.hpp"
expect "no --namespace: 64" 64
run abigen-cpp --combined-json "$fx/Linked.json" --type X "${ns[@]}" --out "$T/x.hpp"
expect "--combined-json with --type: 64" 64
run abigen-cpp --abi "$fx/Token.abi" --type Token "${ns[@]}" --split "$T/x.cpp"
expect "--split with --out -: 64" 64
run abigen-cpp --abi "$fx/Token.abi" --type Token "${ns[@]}" --alias nothing --out "$T/x.hpp"
expect "--alias without '=': 64" 64
run abigen-cpp --abi "$fx/Token.abi" --type Token "${ns[@]}" --alias nosuch=other --out "$T/x.hpp"
expect "--alias naming nothing: 64" 64
expect_err "says so" 'no function, event, error, struct or contract is "nosuch"'
run abigen-cpp --combined-json "$fx/Linked.json" --contract Nope "${ns[@]}" --out "$T/x.hpp"
expect "--contract that is not there: 65" 65
expect_err "lists the contracts" "Linked.sol:MathLib, Linked.sol:UsesMath"
check "no output from refused runs" test ! -e "$T/x.hpp"

# ---- combined JSON: several contracts ---------------------------------------------------------
point='{"name":"p","type":"tuple","internalType":"struct Lib.Point","components":[{"name":"x","type":"uint256"}]}'
cat >"$T/combined.json" <<JSON
{"contracts":{
 "a.sol:A":{"abi":[$(fn f "$point" view)],"bin":"6080"},
 "b.sol:B":{"abi":"[$(fn g "$point" view | sed 's/"/\\"/g')]","bin":""},
 "c.sol:Empty":{"abi":[],"bin":"6080"},
 "d.sol:A":{"abi":[$(fn h "")],"bin":"6080"}}}
JSON
run abigen-cpp --combined-json "$T/combined.json" "${ns[@]}" --out "$T/combined.hpp"
expect "two contracts named A: 65" 65
expect_err "names both and the fix" "contract a.sol:A (--combined-json $T/combined.json: contracts[\"a.sol:A\"]) and contract d.sol:A"
expect_err "the fix" "--alias 'd.sol:A=A_'"
run abigen-cpp --combined-json "$T/combined.json" "${ns[@]}" --out "$T/combined.hpp" --exclude d.sol:A
expect "--exclude d.sol:A: 0 (an ABI as a JSON string, as solc before 0.8.10 wrote it)" 0
expect_err "the empty contract is skipped with a note" 'contracts["c.sol:Empty"]: skipped: its ABI is empty'
check "one struct Point for A and B (same name, same shape)" test "$(grep -c '^struct Point {' "$T/combined.hpp")" = 1
check "two classes" test "$(grep -c '^class ' "$T/combined.hpp")" = 2
check "A has deploy (bin), B not (empty bin)" test "$(grep -c 'static constexpr std::string_view bytecode' "$T/combined.hpp")" = 1
run abigen-cpp --combined-json "$T/combined.json" "${ns[@]}" --out "$T/combined.hpp" --alias 'd.sol:A=OtherA'
expect "--alias d.sol:A=OtherA: 0" 0
check "class OtherA" grep -q '^class OtherA ' "$T/combined.hpp"
run abigen-cpp --combined-json "$T/combined.json" --contract Empty "${ns[@]}" --out "$T/empty_only.hpp"
expect "--contract naming an empty ABI: 65" 65
no_output "--contract Empty" empty_only

# ---- bytecode -----------------------------------------------------------------------------------
run abigen-cpp --combined-json "$fx/Linked.json" "${ns[@]}" --out "$T/linked.hpp"
expect "an unlinked library: 65" 65
expect_err "names the library and --link" "needs library Linked.sol:MathLib linked (at byte 124); deploy it and give its address: --link 'Linked.sol:MathLib=0x...'"
no_output "unlinked" linked
run abigen-cpp --combined-json "$fx/Linked.json" "${ns[@]}" --out "$T/linked.hpp" --link 'Linked.sol:MathLib=0x5FbDB2315678afecb367f032d93F642f64180aa3'
expect "--link path:Name=address: 0" 0
check "the address is in the bytecode" grep -q '5fbdb2315678afecb367f032d93f642f64180aa3' "$T/linked.hpp"
lacks "no placeholder left" "$(cat "$T/linked.hpp")" '__$'
run abigen-cpp --combined-json "$fx/Linked.json" --contract UsesMath "${ns[@]}" --out "$T/one.hpp" --link MathLib=0x5FbDB2315678afecb367f032d93F642f64180aa3
expect "--contract UsesMath with --link Name=address: 0" 0
check "one class" test "$(grep -c '^class ' "$T/one.hpp")" = 1
run abigen-cpp --abi "$fx/Token.abi" --type Token "${ns[@]}" --out "$T/x.hpp" --link MathLib=0x5FbDB2315678afecb367f032d93F642f64180aa3
expect "--link with no bytecode: 64" 64
run abigen-cpp --combined-json "$fx/Linked.json" "${ns[@]}" --out "$T/x.hpp" --link MathLib=0x12
expect "--link to no address: 64" 64
# The old placeholder form (solc before 0.5): __Name padded to 40 characters.
placeholder=__MathLib
while [ ${#placeholder} -lt 40 ]; do placeholder+=_; done
printf '6080%s6000' "$placeholder" >"$T/old.bin"
run abigen-cpp --abi "$fx/CallDemo.abi" --bin "$T/old.bin" --type CallDemo "${ns[@]}" --out "$T/old.hpp"
expect "an old-form placeholder unlinked: 65" 65
expect_err "names the library" "needs library MathLib linked"
run abigen-cpp --abi "$fx/CallDemo.abi" --bin "$T/old.bin" --type CallDemo "${ns[@]}" --out "$T/old.hpp" --link MathLib=0x5FbDB2315678afecb367f032d93F642f64180aa3
expect "an old-form placeholder linked: 0" 0
check "linked" grep -q '"0x60805fbdb2315678afecb367f032d93f642f64180aa36000"' "$T/old.hpp"
printf '0x6080zz' >"$T/bad.bin"
run abigen-cpp --abi "$fx/CallDemo.abi" --bin "$T/bad.bin" --type CallDemo "${ns[@]}" --out "$T/bad.hpp"
expect "bytecode that is not hex: 65" 65
expect_err "names the file" "--bin $T/bad.bin: not hex bytecode"

# ---- a failed run leaves the old output --------------------------------------------------------
echo "// old" >"$T/keep.hpp"
run abigen-cpp --abi "$T/nothing.abi" --type C "${ns[@]}" --out "$T/keep.hpp"
expect "refused run: 65" 65
check "the old header is untouched" test "$(cat "$T/keep.hpp")" = "// old"
check "no temporary file left" test -z "$(ls "$T" | grep 'keep.hpp.tmp')"

# ---- stdin, stdout ------------------------------------------------------------------------------
run_in "$(cat "$fx/CallDemo.abi")" abigen-cpp --abi - --type CallDemo --namespace calldemo
expect "--abi - and --out -: 0" 0
case $out in "// Generated by abigen-cpp "*" from stdin. Do not edit."*) ok ;; *) bad "first line says generated, from stdin" ;; esac
finish
