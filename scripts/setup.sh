#!/usr/bin/env bash
# Installs what BiMamba Workbench needs and builds it. Idempotent: a second run
# only rebuilds what changed.
#
#   scripts/setup.sh            install + configure + build into ./build
#   Torch_DIR=/path/to/share/cmake/Torch scripts/setup.sh   use an existing LibTorch
#   BIMAMBA_GUI=OFF scripts/setup.sh                         headless (no Qt)
#
# LibTorch comes from the PyPI torch==2.11.0 wheel in ./.venv, unless Torch_DIR
# is set or the system python3 already has torch 2.11 (the GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
TORCH_VERSION=2.11.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config git
  python3 python3-venv python3-pip
  qt6-base-dev qt6-base-dev-tools qt6-charts-dev qt6-svg-dev libqt6sql6-sqlite
  libqcustomplot-dev libqcustomplot2.1-qt6 libgl-dev
  libhdf5-dev hdf5-tools libsentencepiece-dev nlohmann-json3-dev
  libgtest-dev libtomlplusplus-dev libsimde-dev xvfb xauth fortunes
  liblzma-dev zlib1g-dev libzstd-dev xz-utils zstd)

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "Debian packages: all present"; return; }
  if ! command -v apt-get >/dev/null; then
    log "missing packages (${missing[*]}) and no apt-get: install them yourself"; exit 1
  fi
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_torch() {
  if [ -n "${Torch_DIR:-}" ]; then TORCH_PREFIX="$Torch_DIR"; log "LibTorch: Torch_DIR=$Torch_DIR"; return; fi
  if python3 -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') else 1)" 2>/dev/null; then
    TORCH_PREFIX="$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
    log "LibTorch: system python3's torch ($TORCH_PREFIX)"; return
  fi
  local VENV="$ROOT/.venv"
  if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') else 1)" 2>/dev/null; then
    log "LibTorch: installing torch==$TORCH_VERSION into $VENV (a large download, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" numpy
  fi
  TORCH_PREFIX="$("$VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
  log "LibTorch: $TORCH_PREFIX"
}

configure_and_build() {
  local gui="${BIMAMBA_GUI:-}"
  if [ -z "$gui" ]; then
    if [ -e /usr/lib/x86_64-linux-gnu/cmake/Qt6/Qt6Config.cmake ] || [ -e /usr/lib/aarch64-linux-gnu/cmake/Qt6/Qt6Config.cmake ]; then gui=ON; else gui=OFF; fi
  fi
  local gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    log "configuring $BUILD_DIR (GUI $gui)"
    cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DBIMAMBA_BUILD_GUI="$gui" ${BIMAMBA_CMAKE_ARGS:-} >/dev/null
  fi
  log "building (this takes a while the first time)"
  cmake --build "$BUILD_DIR" -j "${BIMAMBA_JOBS:-$(nproc)}"
}

install_packages
find_torch
configure_and_build
log "done: binaries in $BUILD_DIR/app"
