#!/usr/bin/env bash
# abigen-cpp's output, byte for byte: each line of tests/abigen/golden.list is generated and
# compared with tests/fixtures/abigen/golden/<name>.hpp (and .cpp for --split), twice (the same
# input gives the same bytes); the golden files are clang-format clean in the generated code's
# style (tests/abigen/clang-format-generated).
#   tests/abigen/golden_test.sh            compare (ctest abigen-golden)
#   tests/abigen/golden_test.sh --update   rewrite the golden files from the current generator
#                                          (make -f Makefile.dist abigen-golden)
# The fixtures' ABIs and bytecode are committed; tests/abigen/compile-fixtures.mjs recompiles them
# from the .sol files with the pinned solc (make -f Makefile.dist abigen-golden COMPILE=1).
source "$(dirname "$0")/../cli/lib.sh"
PATH=$(cd "$PIPEKIT_BIN" && pwd):$PATH
update=0
[ "${1:-}" = --update ] && update=1
fixtures=$PIPEKIT_SRC/tests/fixtures/abigen
golden=$fixtures/golden
style=$PIPEKIT_SRC/tests/abigen/clang-format-generated
mkdir -p "$golden"
cd "$fixtures" || exit 1

while read -r name flags; do
  case $name in '' | '#'*) continue ;; esac
  case $flags in *SPLIT_CPP*) flags=${flags/SPLIT_CPP/$T/$name.cpp} ;; esac
  # shellcheck disable=SC2086
  run abigen-cpp $flags --out "$T/$name.hpp"
  expect "$name: abigen-cpp exits 0" 0
  [ "$status" = 0 ] || continue
  outputs=("$name.hpp")
  [ -f "$T/$name.cpp" ] && outputs+=("$name.cpp")
  for f in "${outputs[@]}"; do
    if [ $update = 1 ]; then
      cp "$T/$f" "$golden/$f"
      echo "updated golden/$f"
      continue
    fi
    if cmp -s "$T/$f" "$golden/$f"; then ok; else
      bad "$name: $f differs from tests/fixtures/abigen/golden/$f (if intended: make -f Makefile.dist abigen-golden)"
      diff -u "$golden/$f" "$T/$f" | head -40
    fi
  done
  # Deterministic: a second run, the same bytes.
  mv "$T/$name.hpp" "$T/$name.first.hpp"
  # shellcheck disable=SC2086
  run abigen-cpp $flags --out "$T/$name.hpp"
  check "$name: a second run writes the same bytes" cmp -s "$T/$name.hpp" "$T/$name.first.hpp"
done <"$PIPEKIT_SRC/tests/abigen/golden.list"

# clang-format clean (Debian's clang-format; `make -f Makefile.dist deps` installs it).
if command -v clang-format >/dev/null; then
  for f in "$golden"/*.hpp "$golden"/*.cpp; do
    run clang-format --style="file:$style" --dry-run -Werror "$f"
    expect "clang-format clean: golden/$(basename "$f")" 0
  done
else
  bad "clang-format is missing (make -f Makefile.dist deps installs it)"
fi
finish
