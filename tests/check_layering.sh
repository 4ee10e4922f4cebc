#!/usr/bin/env bash
# The layer rules of CONTRIBUTING.md, checked on the source tree and, where it
# was built, on the workbench's link: app -> ui -> core -> kernels, never
# upwards; the GUI, the CPU engine, the torch-free core libraries and the
# torch-free chat process include no LibTorch header; bimamba-workbench and
# bimamba-chat load no LibTorch library.
#
#   tests/check_layering.sh SOURCE_DIR [BINARY...]   (bimamba-workbench, bimamba-chat)
set -uo pipefail
src="${1:?source dir}"
shift
bins=("$@")
cd "$src" || exit 2
fail=0
# forbid DIRS PATTERN WHAT: no #include matching PATTERN in the files of DIRS
forbid() {
    local hits
    hits=$(grep -rnE --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($2)" $1 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "layering: $3:"
        echo "$hits" | sed 's/^/  /'
        fail=1
    fi
}
forbid "kernels" "core/|ui/|app/" "kernels/ includes a higher layer"
forbid "core" "ui/|app/" "core/ includes a higher layer"
forbid "ui" "app/" "ui/ includes app/"
torch="torch/|ATen/|c10/"
forbid "ui" "$torch" "the GUI includes LibTorch"
forbid "core/base core/data core/engine core/study kernels/cpu" "$torch" "a torch-free part of core includes LibTorch"
forbid "core/base core/data core/engine core/study kernels/cpu" "core/(model|train|eval|quant)/" \
    "a torch-free part of core includes a LibTorch-linked one"
chat="app/chat app/cli/cmd_chat.cpp app/cli/Command.cpp app/cli/Command.h app/cli/JsonEvents.h"
forbid "$chat" "$torch" "bimamba-chat's sources include LibTorch"
forbid "$chat" "core/(model|train|quant)/" "bimamba-chat's sources include a LibTorch-linked part"
for bin in "${bins[@]}"; do
    if [ ! -x "$bin" ]; then
        echo "layering: no binary at $bin"
        fail=1
    elif ldd "$bin" | grep -E "libtorch|libc10" >/dev/null; then
        echo "layering: $(basename "$bin") loads LibTorch:"
        ldd "$bin" | grep -E "libtorch|libc10" | sed 's/^/  /'
        fail=1
    fi
done
[ $fail = 0 ] && echo "layering: app -> ui -> core -> kernels holds; ui, core/{base,data,engine,study}, kernels/cpu and bimamba-chat's sources are torch-free${bins[*]:+; no LibTorch linked by: ${bins[*]##*/}}"
exit $fail
