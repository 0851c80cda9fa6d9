#!/usr/bin/env bash
# `make install`'s layout, and find_package(pipekit) from a user's project against it.
source "$(dirname "$0")/lib.sh"
build=${PIPEKIT_BUILD:?}
run cmake --install "$build" --prefix "$T/prefix"
expect "cmake --install" 0
for f in bin/ethcall share/man/man1/ethcall.1 share/bash-completion/completions/ethcall \
         share/zsh/site-functions/_ethcall share/fish/vendor_completions.d/ethcall.fish \
         include/pipekit/eth/abi.hpp lib/libpipekit.a lib/cmake/pipekit/pipekitConfig.cmake; do
  check "installed $f" test -e "$T/prefix/$f"
done
check "no internal header installed" test -z "$(find "$T/prefix/include" -name '*_internal.hpp')"
check "the broker's public header installed" test -e "$T/prefix/include/pipekit/broker/server.hpp"
run cmake -S "$PIPEKIT_SRC/tests/fixtures/consumer" -B "$T/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$T/prefix"
expect "find_package(pipekit) configures" 0
run cmake --build "$T/consumer"
expect "a consumer builds against the installed library" 0
run "$T/consumer/consumer"
expect "and runs" 0 0xa9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c80000000000000000000000000000000000000000000000000000000000000001
finish
