#!/usr/bin/env bash
# The main job: install, build, then open the workbench where there is a
# display, else run the quickstart study headless and write its report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$BUILD_DIR/app/bimamba-workbench" ]; then
  exec "$BUILD_DIR/app/bimamba-workbench" --workspace "${BIMAMBA_WORKSPACE:-$ROOT/runs}"
fi
exec "$BUILD_DIR/app/bimamba" quickstart --workspace "${BIMAMBA_WORKSPACE:-$ROOT/runs}"
