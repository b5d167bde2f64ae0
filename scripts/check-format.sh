#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that the C sources are formatted as .clang-format says.
#
#   scripts/check-format.sh [file...]     default: every tracked *.c and *.h
#
# Environment:
#   CLANG_FORMAT   the formatter (default clang-format-14, else clang-format)
#
# Prints each file that differs with the formatter's diff and exits 1 when
# any does, 0 when none, 2 when the formatter is missing. Fix with
# `$CLANG_FORMAT -i FILE`.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  if command -v clang-format-14 >/dev/null; then cf=clang-format-14
  elif command -v clang-format >/dev/null; then cf=clang-format
  else echo "check-format.sh: clang-format-14 is not installed (apt-get install clang-format-14)" >&2; exit 2
  fi
fi
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
fi
bad=()
for f in "${files[@]}"; do
  if ! "$cf" --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - ; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format.sh: ${#bad[@]} file(s) not formatted: ${bad[*]}" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} file(s) formatted"
