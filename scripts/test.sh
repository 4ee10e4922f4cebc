#!/usr/bin/env bash
# Install, build and run every test: first the fuzz stage (scripts/fuzz.sh:
# every libFuzzer target 30 s, two at a time, in build-fuzz; BIMAMBA_TEST_FUZZ=0
# skips it), then ctest. Ends with ctest's summary line (and a line saying so
# when the fuzz stage failed; the exit status is then 1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="${BIMAMBA_TEST_FUZZ:-1}"
# The remote-run tests start an sshd and a one-node Slurm (tests/remote/).
BIMAMBA_TEST_SERVERS="${BIMAMBA_TEST_SERVERS:-1}" BIMAMBA_TEST_FUZZ="$FUZZ" "$ROOT/scripts/setup.sh"
fuzz_rc=0
if [ "$FUZZ" = 1 ]; then
  FUZZ_PARALLEL="${FUZZ_PARALLEL:-2}" "$ROOT/scripts/fuzz.sh" "${BIMAMBA_FUZZ_SECONDS:-30}" || fuzz_rc=$?
fi
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
cd "$BUILD_DIR"
ctest_rc=0
ctest --output-on-failure -j "${BIMAMBA_TEST_JOBS:-2}" "$@" || ctest_rc=$?
if [ "$fuzz_rc" -ne 0 ]; then
  # Once more, last, so a log that keeps only its end keeps the report.
  cat "${FUZZ_BUILD:-$ROOT/build-fuzz}/fuzz-logs/failures.txt" >&2 2>/dev/null || true
  echo "fuzz stage failed (exit $fuzz_rc): see the table above and build-fuzz/fuzz-logs" >&2
  exit 1
fi
exit "$ctest_rc"
