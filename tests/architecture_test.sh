#!/usr/bin/env bash
# The #include arrows between the areas of lib/pipekit hold to the list in docs/architecture.md:
# an arrow the list does not name fails (with the file and the line), as does an area the list does
# not know, or an *_internal.hpp included from outside its area or from a public header.
# Usage: tests/architecture_test.sh [SOURCE_DIR]   (default: PIPEKIT_SRC, else the checkout)
set -euo pipefail
src=${1:-${PIPEKIT_SRC:-$(cd "$(dirname "$0")/.." && pwd)}}
doc=$src/docs/architecture.md
lib=$src/lib/pipekit
[[ -f $doc && -d $lib ]] || { echo "architecture_test: no $doc or $lib" >&2; exit 2; }

# The list: the lines of the ```arrows block, "area -> area area ...".
declare -A allowed known
in_block=0
while IFS= read -r line; do
  if [[ $line == '```arrows' ]]; then in_block=1; continue; fi
  if (( in_block )) && [[ $line == '```' ]]; then in_block=0; continue; fi
  (( in_block )) || continue
  [[ $line =~ ^([a-z_]+)\ *-\>(.*)$ ]] || { echo "$doc: not an arrow line: $line" >&2; exit 1; }
  from=${BASH_REMATCH[1]}
  known[$from]=1
  for to in ${BASH_REMATCH[2]}; do allowed["$from>$to"]=1; done
done <"$doc"
(( ${#known[@]} > 0 )) || { echo "$doc: no \`\`\`arrows block" >&2; exit 1; }

fail=0
declare -A seen
for dir in "$lib"/*/; do
  area=$(basename "$dir")
  if [[ -z ${known[$area]:-} ]]; then
    echo "lib/pipekit/$area: an area docs/architecture.md does not list (add its arrow line)"
    fail=1
  fi
done

# Every include of another area's header, as "file:line:area".
while IFS=: read -r file lineno text; do
  rel=${file#"$src"/}
  from=$(cut -d/ -f3 <<<"$rel")
  [[ $text =~ \#include\ \"pipekit/([a-z_]+)/([A-Za-z0-9_.]+)\" ]] || continue
  to=${BASH_REMATCH[1]}
  header=${BASH_REMATCH[2]}
  if [[ $header == *_internal.hpp ]]; then
    if [[ $to != "$from" ]]; then
      echo "$rel:$lineno: includes pipekit/$to/$header: an internal header of another area"
      fail=1
    elif [[ $rel == *.hpp && $rel != *_internal.hpp ]]; then
      echo "$rel:$lineno: a public header includes pipekit/$to/$header (internal headers are not installed)"
      fail=1
    fi
  fi
  [[ $to == "$from" ]] && continue
  seen["$from>$to"]=1
  if [[ -z ${allowed["$from>$to"]:-} ]]; then
    echo "$rel:$lineno: $from -> $to is not in docs/architecture.md's arrow list"
    fail=1
  fi
done < <(grep -rnH --include='*.hpp' --include='*.cpp' '^#include "pipekit/[a-z_]*/' "$lib")

# Arrows listed that the code no longer has: worth a look, not a failure (the list says what may be).
for arrow in "${!allowed[@]}"; do
  [[ -n ${seen[$arrow]:-} ]] || echo "note: ${arrow/>/ -> } is listed but no include uses it"
done

if (( fail )); then
  echo "architecture_test: FAILED (docs/architecture.md lists what each area may include)"
  exit 1
fi
echo "architecture_test: ok (${#seen[@]} arrows between ${#known[@]} areas)"
