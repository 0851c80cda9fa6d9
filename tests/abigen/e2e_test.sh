#!/usr/bin/env bash
# abigen-e2e: pipekit as a user gets it. Installs the build with DESTDIR into a staging tree, then
# against that tree only:
#   - the contracts in tests/abigen/e2e/contracts (and CallDemo) compiled by solc now;
#   - a CMake project (tests/abigen/e2e) doing find_package(pipekit CONFIG REQUIRED) builds and
#     runs against anvil;
#   - the same program compiled with `pkg-config --cflags --libs --static pipekit` runs.
# Environment (set by ctest): PIPEKIT_BUILD (the build tree), PIPEKIT_BIN, PIPEKIT_SRC,
# PIPEKIT_TEST_NODE_MODULES. The work tree is $PIPEKIT_BUILD/abigen-e2e (a fixed path under the
# build, so ccache finds the previous run's objects), emptied at each start.
source "$(dirname "$0")/../cli/lib.sh"
build=${PIPEKIT_BUILD:?}
W=$build/abigen-e2e
stage=$W/stage/usr/local
rm -rf "$W" && mkdir -p "$W"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cxx=(c++)
command -v ccache >/dev/null && cxx=(ccache c++)
step() { echo "-- $* ($SECONDS s)"; }

step "cmake --install (DESTDIR)"
DESTDIR=$W/stage run cmake --install "$build" --prefix /usr/local
expect "cmake --install with DESTDIR" 0
for f in lib/libpipekit.a lib/pkgconfig/pipekit.pc lib/cmake/pipekit/pipekitConfig.cmake \
         lib/cmake/pipekit/PipekitAbigen.cmake include/pipekit/eth/rpc.hpp; do
  check "installed $f" test -e "$stage/$f"
done

step "solc: the test contracts"
run node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC"/tests/abigen/e2e/contracts/*.sol \
  "$PIPEKIT_SRC/tests/fixtures/contracts/CallDemo.sol" "$W/solc"
expect "solc compiles the contracts" 0
for c in CallDemo Token Shapes Overloads Events Vault; do
  check "solc wrote $c.abi and $c.bin" test -s "$W/solc/$c.abi" -a -s "$W/solc/$c.bin"
done

step "configure and build tests/abigen/e2e against the staged install"
run cmake -S "$PIPEKIT_SRC/tests/abigen/e2e" -B "$W/e2e" -G Ninja -DCMAKE_PREFIX_PATH="$stage" "${launcher[@]}"
expect "find_package(pipekit) from the DESTDIR install configures" 0
run cmake --build "$W/e2e"
expect "the e2e project builds" 0

step "pkg-config --static"
export PKG_CONFIG_PATH=$stage/lib/pkgconfig
run pkg-config --modversion pipekit
expect "pkg-config finds pipekit.pc in the staged tree" 0 "$(sed -n 's/^project(pipekit VERSION \([0-9.]*\).*/\1/p' "$PIPEKIT_SRC/CMakeLists.txt")"
run pkg-config --variable=includedir pipekit
check "pipekit.pc's includedir is the staged one" test "$(cd "$out" 2>/dev/null && pwd -P)" = "$(cd "$stage/include" && pwd -P)"
pc_flags=$(pkg-config --cflags --libs --static pipekit)
run "${cxx[@]}" -std=c++20 "$PIPEKIT_SRC/tests/abigen/e2e/chainid.cpp" $pc_flags -o "$W/chainid-pc"
expect "a program compiles and links with pkg-config --static pipekit" 0

step "against anvil"
start_anvil
export ETH_RPC_URL=$ANVIL_URL
run "$W/e2e/chainid"
expect "chainid (CMake) asks anvil through the installed library" 0 31337
run "$W/chainid-pc"
expect "chainid (pkg-config) asks anvil through the installed library" 0 31337

step "done"
finish
