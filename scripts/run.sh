#!/usr/bin/env bash
# The main job: install, build, then open the workbench where there is a
# display; else run the quickstart study headless (fortunes corpus -> full-
# precision Mamba-2 teacher -> Bi-Mamba students) and write its HDF5 report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
WS="${BIMAMBA_WORKSPACE:-$ROOT/quickstart}"
CLI="$BUILD_DIR/app/bimamba"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$BUILD_DIR/app/bimamba-workbench" ]; then
  exec "$BUILD_DIR/app/bimamba-workbench" --workspace "$WS" --cli "$CLI"
fi
"$CLI" quickstart --workspace "$WS"
R="$WS/runs"
"$CLI" report --run "$R/student_kd" \
  --hist "mamba2=$R/teacher,bi-mamba=$R/student_kd,bi-mamba-ce=$R/student_ce" \
  --out "$WS/report.h5"
echo "quickstart results: $WS/report.json, HDF5 report: $WS/report.h5 (open the runs with bimamba-workbench --workspace $WS)"
