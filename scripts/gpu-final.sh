#!/usr/bin/env bash
# One lease, issue #21's closing measurement: build, test_cuda_kernels, our bench
# sweep (Bi-Mamba and Mamba-2, micro-batch 8,16; Bi-Mamba with the teacher), the
# mamba_ssm reference at its best micro-batch (16; with the teacher too), the
# 130M numerics run, the GPU telemetry check, and a profile at micro-batch 8.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
export GPU_BUILD_DIR="${GPU_BUILD_DIR:-/tmp/bimamba-gpu-build}"
B="$GPU_BUILD_DIR/app/bimamba"
# .gpudata beside a transported copy of the tree (its parent holds the carried files)
[ -e "$ROOT/.gpudata" ] || [ ! -d "$ROOT/../.gpudata" ] || ln -sfn ../.gpudata "$ROOT/.gpudata"
R=(python3 "$ROOT/tests/reference/bench_mamba_ssm_reference.py" --mamba-path "$ROOT/.ext/mamba_ref" --preset 780m
   --seq 2048 --steps 6 --warmup 3 --fused-adamw)
ours() { "$B" bench train --preset 780m --seq 2048 --steps 6 --warmup 2 "$@"; }
BUILD_TARGETS="bimamba test_cuda_kernels" OUT="$OUT" "$ROOT/scripts/gpu-check.sh" build 2>&1 | tail -2 || exit 1
"$GPU_BUILD_DIR/tests/test_cuda_kernels" > "$OUT/tests.log" 2>&1; echo "test_cuda_kernels exit $?"
grep -E "^\[  (PASSED|FAILED)|^\[  FAILED" "$OUT/tests.log" | head -12
echo "=== ours ($(date +%T))"
ours --micro-batch 8,16 --teacher off 2>&1 | tee "$OUT/bench_ours.log" | grep -E "^(Bi-Mamba|Mamba-2)"
echo "=== reference ($(date +%T))"
"${R[@]}" --micro-batch 16 --teacher off 2>&1 | tee "$OUT/bench_ref.log" | grep -E "^(Bi-Mamba|Mamba-2)|Error"
echo "=== teacher rows ($(date +%T))"
ours --micro-batch 8,16 --binarize in_proj+out_proj --teacher on 2>&1 | tee "$OUT/bench_ours_teacher.log" | grep -E "^Bi-Mamba"
"${R[@]}" --micro-batch 16 --binarize in_proj+out_proj --teacher on 2>&1 | tee "$OUT/bench_ref_teacher.log" | grep -E "^Bi-Mamba|Error"
echo "=== numerics, telemetry ($(date +%T))"
timeout 200 env OUT="$OUT" "$ROOT/scripts/gpu-check.sh" numerics telemetry 2>&1 | grep -vE "^NVIDIA|^total"
echo "=== profile ($(date +%T))"
"$B" bench train --preset 780m --seq 2048 --micro-batch 8 --binarize in_proj+out_proj --teacher off --steps 2 --warmup 2 \
  --profile - > "$OUT/profile.log" 2>&1
sed -n '4,30p' "$OUT/profile.log"
echo "done $(date +%T)"
