#!/usr/bin/env bash
# Install, build and run every test. Ends with ctest's summary line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The remote-run tests start an sshd and a one-node Slurm (tests/remote/).
BIMAMBA_TEST_SERVERS="${BIMAMBA_TEST_SERVERS:-1}" "$ROOT/scripts/setup.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${BIMAMBA_TEST_JOBS:-2}" "$@"
