#!/usr/bin/env bash
# The whole test suite built once with AddressSanitizer + UndefinedBehaviorSanitizer
# (issue #17, item 6; docs/reliability.md), in build-asan beside the normal
# build: the project's own code is instrumented (LibTorch, Qt and the other
# system libraries are not). Leak detection is off: LibTorch's and Qt's
# one-time allocations at exit are not leaks of this project (the fuzz
# targets, which link neither, check leaks).
#
#   scripts/sanitize.sh                  configure, build, run every test
#   scripts/sanitize.sh -R test_train    ctest arguments pass through
#   SANITIZE_JOBS=2 (build parallelism), SANITIZE_BUILD=build-asan
# Needs what scripts/setup.sh installs; a full rebuild (about as long as the
# first build of ./build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SANITIZE_BUILD:-$ROOT/build-asan}"
JOBS="${SANITIZE_JOBS:-2}"
torch_prefix() {
  for py in "$ROOT/.venv/bin/python" python3; do
    "$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null && return
  done
  echo "sanitize: no LibTorch found (run scripts/setup.sh first)" >&2
  exit 1
}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$(torch_prefix)" \
    -DBIMAMBA_CUDA=OFF -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
    ${BIMAMBA_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD" -j "$JOBS"
cd "$BUILD"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_odr_violation=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --output-on-failure -j "${BIMAMBA_TEST_JOBS:-2}" "$@"
