#!/usr/bin/env bash
# format-check.sh — checks that every C source and header under runtime/,
# actors/, examples/, tests/, bench/ and tools/ matches .clang-format.
# Prints the offending lines and exits non-zero when one does not.
#   bash tools/format-check.sh          check every file
#   bash tools/format-check.sh FILE...  check only these files
#   bash tools/format-check.sh --fix    rewrite the files in place instead
# Works from any directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=(--dry-run -Werror)
if [ "${1:-}" = --fix ]; then
    mode=(-i)
    shift
fi

if ! command -v clang-format >/dev/null 2>&1; then
    echo "format-check: clang-format is missing; run: bash tools/setup.sh" >&2
    exit 2
fi

files=("$@")
if [ "${#files[@]}" -eq 0 ]; then
    dirs=()
    for d in runtime actors examples tests bench tools; do
        [ -d "$d" ] && dirs+=("$d")
    done
    [ "${#dirs[@]}" -gt 0 ] && mapfile -t files < <(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
fi
if [ "${#files[@]}" -eq 0 ]; then
    echo "format-check: no C files"
    exit 0
fi

if clang-format --style=file "${mode[@]}" "${files[@]}"; then
    echo "format-check: ${#files[@]} files OK"
else
    echo "format-check: some files differ from .clang-format;" \
        "see above, or fix them with: bash tools/format-check.sh --fix FILE..." >&2
    exit 1
fi
