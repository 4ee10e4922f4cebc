#!/usr/bin/env bash
# Formats the tree with .clang-format, or checks it (--check: lists the files
# that would change and exits 1). Needs clang-format (Debian: clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
CF="${CLANG_FORMAT:-$(command -v clang-format || command -v clang-format-14 || true)}"
[ -n "$CF" ] || { echo "format.sh: clang-format is not installed (apt install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' '*.hpp')
if [ "${1:-}" = "--check" ]; then
    bad=0
    for f in "${files[@]}"; do
        if ! "$CF" --dry-run --Werror "$f" >/dev/null 2>&1; then echo "needs formatting: $f"; bad=1; fi
    done
    exit $bad
fi
"$CF" -i "${files[@]}"
