#!/usr/bin/env bash
# Every program's documented flags are its real flags:
#  - the committed completions equal what `<tool> --completions=SHELL` generates now;
#  - the flags in the man page's OPTIONS section (per "## <subcommand>" subsection) equal
#    the flag list the program reports (`--completions=flags`), -h/--help aside;
#  - the README has a section for the program, and its man page has the standard sections.
# Usage: docs_test.sh BIN_DIR
set -u
bin_dir=$1
src=${PIPEKIT_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
failed=0 passed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
pass() { passed=$((passed + 1)); }

# Flags of man/<tool>.1.scd's OPTIONS section, as "<tool>[ <sub>]: sorted flags" lines.
man_flags() {
  local tool=$1 scd=$2
  awk -v tool="$tool" '
    /^# / { in_opts = ($0 == "# OPTIONS"); cmd = tool; next }
    in_opts && /^## / { cmd = tool " " substr($0, 4); next }
    in_opts && /^\*-/ {
      line = $0
      while (match(line, /\*-[-A-Za-z0-9]+\*/)) {
        flag = substr(line, RSTART + 1, RLENGTH - 2)
        if (flag != "-h" && flag != "--help") flags[cmd] = flags[cmd] " " flag
        line = substr(line, RSTART + RLENGTH)
      }
      seen[cmd] = 1
    }
    in_opts && /^## / { seen[cmd] = 1 }
    END { for (c in seen) print c ":" flags[c] }' "$scd" |
  while IFS=: read -r cmd flags; do
    printf '%s: %s\n' "$cmd" "$(printf '%s\n' $flags | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ *$//')"
  done | LC_ALL=C sort
}

shopt -s nullglob
tools=("$bin_dir"/*)
[ ${#tools[@]} -gt 0 ] || { echo "FAIL: no programs in $bin_dir"; echo "0 passed, 1 failed"; exit 1; }
for exe in "${tools[@]}"; do
  [ -x "$exe" ] || continue
  tool=$(basename "$exe")
  for shell in bash zsh fish; do
    case $shell in bash) f=completions/bash/$tool ;; zsh) f=completions/zsh/_$tool ;; fish) f=completions/fish/$tool.fish ;; esac
    if ! "$exe" --completions=$shell | diff -u "$src/$f" - >/tmp/pipekit-docs-diff.$$ 2>&1; then
      fail "$f differs from '$tool --completions=$shell' (run: make -f Makefile.dist completions)"
      head -20 /tmp/pipekit-docs-diff.$$
    else pass; fi
  done
  scd=$src/man/$tool.1.scd
  if [ ! -f "$scd" ]; then fail "man/$tool.1.scd is missing"; continue; fi
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS INPUT OUTPUT "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
    grep -qx "# $section" "$scd" && pass || fail "man/$tool.1.scd has no '# $section' section"
  done
  real=$("$exe" --completions=flags | while IFS=: read -r cmd flags; do
    printf '%s: %s\n' "$cmd" "$(printf '%s\n' $flags | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ *$//')"
  done | LC_ALL=C sort)
  documented=$(man_flags "$tool" "$scd")
  if [ "$real" != "$documented" ]; then
    fail "man/$tool.1.scd OPTIONS do not match $tool's flags (< program, > man page):"
    diff <(echo "$real") <(echo "$documented")
  else pass; fi
  grep -q "^## $tool\b" "$src/README.md" && pass || fail "README.md has no '## $tool' section"
done
rm -f /tmp/pipekit-docs-diff.$$
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
