#!/usr/bin/env bash
# Every golden header (tests/fixtures/abigen/golden) compiles with the project's compiler under
# -std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror, against the library's headers in
# the tree: one translation unit includes them all (and the --split .cpp), then tests/abigen/usage.cpp
# (the API as a caller writes it), so it costs one compile.
# Usage: compile_test.sh CXX   (ctest abigen-golden-compile passes CMAKE_CXX_COMPILER)
source "$(dirname "$0")/../cli/lib.sh"
cxx=${1:-c++}
golden=$PIPEKIT_SRC/tests/fixtures/abigen/golden
launcher=()
command -v ccache >/dev/null && launcher=(ccache)
# And one not golden: an ABI of 300 KB (a long internalType), whose embedded JSON is longer than
# g++ counts a string literal's length in constexpr (262144 steps).
long=$(head -c 300000 /dev/zero | tr '\0' x)
printf '[{"type":"function","name":"f","stateMutability":"view","inputs":[{"name":"a","type":"uint256","internalType":"%s"}],"outputs":[]}]' \
  "$long" >"$T/long.abi"
PATH=$(cd "$PIPEKIT_BIN" && pwd):$PATH
run abigen-cpp --abi "$T/long.abi" --type Long --namespace long_abi --out "$T/long.hpp"
expect "a 300 KB ABI is generated" 0
{
  echo "#include \"$T/long.hpp\""
  for h in "$golden"/*.hpp; do echo "#include \"$h\""; done
  for c in "$golden"/*.cpp; do echo "#include \"$c\""; done
  echo "#include \"$PIPEKIT_SRC/tests/abigen/usage.cpp\""
} >"$T/all_golden.cpp"
check "there are golden headers" test "$(grep -c hpp "$T/all_golden.cpp")" -ge 5
run "${launcher[@]}" "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror \
  -fsyntax-only -I"$PIPEKIT_SRC/lib" "$T/all_golden.cpp"
expect "the golden headers and usage.cpp compile with -Wall -Wextra -Werror" 0
[ "$status" = 0 ] || echo "$err" | head -40
finish
