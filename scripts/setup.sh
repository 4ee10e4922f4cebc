#!/usr/bin/env bash
# Installs what BiMamba Workbench needs and builds it. Idempotent: a second run
# only rebuilds what changed.
#
#   scripts/setup.sh            install + configure + build into ./build
#   Torch_DIR=/path/to/share/cmake/Torch scripts/setup.sh   use an existing LibTorch
#   BIMAMBA_GUI=OFF scripts/setup.sh                         headless (no Qt)
#   BIMAMBA_TEST_SERVERS=1 scripts/setup.sh                  also the servers the remote-run tests
#                                                            start (scripts/test.sh sets it)
#   BIMAMBA_TEST_FUZZ=1 scripts/setup.sh                     also clang and its libFuzzer runtime for
#                                                            scripts/fuzz.sh (scripts/test.sh sets it)
#
# LibTorch comes from the PyPI torch==2.11.0 wheel in ./.venv, unless Torch_DIR
# is set or the system python3 already has torch 2.11 (the GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
TORCH_VERSION=2.11.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Everything the build, the tests, the GUI and the scripts use, named
# explicitly: apt runs with --no-install-recommends, so a package that is only
# recommended (libqt6opengl6-dev by qt6-base-dev, say) must be listed here.
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config git ca-certificates
  python3 python3-venv python3-pip
  qt6-base-dev qt6-base-dev-tools qt6-charts-dev qt6-svg-dev libqt6sql6-sqlite
  libqcustomplot-dev libgl-dev
  fontconfig fonts-dejavu-core
  libhdf5-dev hdf5-tools libsentencepiece-dev nlohmann-json3-dev
  libgtest-dev libtomlplusplus-dev libsimde-dev xvfb xauth fortunes
  liblzma-dev zlib1g-dev libzstd-dev xz-utils zstd
  openssh-client rsync)

# The servers tests/remote/*.sh start on 127.0.0.1 for the remote-run tests
# (a throwaway sshd, a one-node Slurm with munge), and the D-Bus daemon the
# desktop-notification test starts a private bus with; only with
# BIMAMBA_TEST_SERVERS=1, so that a workstation set up to use the workbench
# does not get an SSH server or Slurm daemons it did not ask for.
if [ "${BIMAMBA_TEST_SERVERS:-0}" = 1 ]; then
  APT_PACKAGES+=(openssh-server slurm-wlm munge dbus-daemon)
fi

# Packages that only some releases split out: installed where the package
# lists have them (Qt6OpenGL's CMake files: libqt6opengl6-dev on Debian 12,
# inside qt6-base-dev on Debian 13).
SPLIT_PACKAGES=(libqt6opengl6-dev)

# The fuzz stage of scripts/test.sh (scripts/fuzz.sh, docs/reliability.md):
# clang, and the package with its libFuzzer/sanitizer runtimes
# (libclang_rt.fuzzer), which clang only recommends: libclang-rt-dev, the
# default clang's libclang-rt-NN-dev on Debian 12 (14) and 13 (19); a
# split-style entry, so that a release that names it otherwise still sets up
# (scripts/fuzz.sh then says what is missing).
# llvm brings llvm-symbolizer, so that the sanitizers' reports name their
# functions (without it a fresh machine's report was bare addresses).
if [ "${BIMAMBA_TEST_FUZZ:-0}" = 1 ]; then
  APT_PACKAGES+=(clang llvm)
  SPLIT_PACKAGES+=(libclang-rt-dev)
fi

die() { printf '\033[1m[setup]\033[0m error: %s\n' "$*" >&2; exit 1; }

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  for p in "${SPLIT_PACKAGES[@]}"; do  # a split package absent while its release has it
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [ -n "$(apt-cache policy "$p" 2>/dev/null | grep -m1 'Candidate:' | grep -v '(none)')" ] && missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "Debian packages: all present"; return; }
  command -v apt-get >/dev/null ||
    die "no apt-get on this system: install these packages (or your system's equivalents) yourself: ${missing[*]}; then run again (Torch_DIR=... to use your own LibTorch 2.11)"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: as root, run: apt-get install ${missing[*]}"
    sudo -n true 2>/dev/null || log "sudo will ask for your password to install: ${missing[*]}"
    SUDO="sudo"
  fi
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq >/tmp/bimamba-apt-update.log 2>&1 ||
    die "apt-get update failed (no network to the package registry?): see /tmp/bimamba-apt-update.log"
  for p in "${SPLIT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [ -n "$(apt-cache policy "$p" 2>/dev/null | grep -m1 'Candidate:' | grep -v '(none)')" ] && missing+=("$p")
  done
  local unknown=()
  for p in "${missing[@]}"; do
    [ -n "$(apt-cache policy "$p" 2>/dev/null | grep -m1 'Candidate:' | grep -v '(none)')" ] || unknown+=("$p")
  done
  [ ${#unknown[@]} -eq 0 ] ||
    die "this system's package lists have no ${unknown[*]}: supported are Debian 12 and 13 (README, 'Other systems')"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/tmp/bimamba-apt-install.log 2>&1 || { tail -5 /tmp/bimamba-apt-install.log >&2;
      die "apt-get install failed: see /tmp/bimamba-apt-install.log"; }
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
    python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" numpy ||
      die "could not install torch==$TORCH_VERSION from PyPI (no network to PyPI, or no wheel for $(python3 -V 2>&1) on $(uname -m)); set Torch_DIR to a LibTorch 2.11 instead"
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
