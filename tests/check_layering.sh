#!/usr/bin/env bash
# The layer rules of CONTRIBUTING.md, checked on the source tree and, where it
# was built, on the workbench's link: app -> ui -> core -> kernels, never
# upwards; the GUI, the CPU engine and the torch-free core libraries include
# no LibTorch header; bimamba-workbench loads no LibTorch library.
#
#   tests/check_layering.sh SOURCE_DIR [WORKBENCH_BINARY]
set -uo pipefail
src="${1:?source dir}"
gui="${2:-}"
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
if [ -n "$gui" ]; then
    if [ ! -x "$gui" ]; then
        echo "layering: no workbench binary at $gui"
        fail=1
    elif ldd "$gui" | grep -E "libtorch|libc10" >/dev/null; then
        echo "layering: bimamba-workbench loads LibTorch:"
        ldd "$gui" | grep -E "libtorch|libc10" | sed 's/^/  /'
        fail=1
    fi
fi
[ $fail = 0 ] && echo "layering: app -> ui -> core -> kernels holds; ui, core/{base,data,engine,study} and kernels/cpu are torch-free${gui:+; bimamba-workbench links no LibTorch}"
exit $fail
