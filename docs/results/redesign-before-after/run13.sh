#!/usr/bin/env bash
# #13 before/after: the CLI at 87e6135 (before the redesign) and at HEAD, both
# CUDA-off Release builds on this machine; the same quickstart student through
# LibTorch and through the CPU engine, and bench cpu at 780M (2 threads),
# alternated.
set -uo pipefail
R=$(pwd); W=build-before13; O=${OUT:-/tmp/out13}; mkdir -p $O
TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
cp -a .deps $W/src/.deps 2>/dev/null; cp -a .ext $W/src/.ext 2>/dev/null
build() {  # src dir, build dir
  cmake -S $1 -B $2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
    -DBIMAMBA_BUILD_TESTS=OFF -DBIMAMBA_CUDA=OFF > $O/configure-$(basename $2).log 2>&1 &&
  cmake --build $2 -j 8 --target bimamba > $O/build-$(basename $2).log 2>&1
  echo "build $2 rc=$?"
}
build $W/src /tmp/b-before & build $R /tmp/b-after & wait
echo "built at $SECONDS s"
WIKI=$W/wiki_valid.txt
# the quickstart (fortunes -> teacher -> two students) with each CLI: same seed, same threads
for v in before after; do
  /tmp/b-$v/app/bimamba quickstart --workspace /tmp/qs-$v --corpus $W/fortunes --threads 8 --quiet > $O/quickstart-$v.log 2>&1 &
done
wait
echo "quickstarts done at $SECONDS s"
for v in before after; do
  cp /tmp/qs-$v/report.json $O/quickstart-report-$v.json
  for r in teacher student_kd student_ce; do cp /tmp/qs-$v/runs/$r/metrics.jsonl $O/metrics-$v-$r.jsonl; done
done
for r in teacher student_kd student_ce; do
  cmp -s $O/metrics-before-$r.jsonl $O/metrics-after-$r.jsonl && echo "$r: metrics.jsonl identical" || {
    echo "$r: metrics differ"; python3 - $O/metrics-before-$r.jsonl $O/metrics-after-$r.jsonl <<'PY'
import json,sys
a=[json.loads(l) for l in open(sys.argv[1])]; b=[json.loads(l) for l in open(sys.argv[2])]
for k in ("loss","val_loss"):
  x=[r[k] for r in a if k in r]; y=[r[k] for r in b if k in r]
  if x and y: print(f"  {k}: n={len(x)}/{len(y)} last {x[-1]:.6f} / {y[-1]:.6f} max|diff| {max(abs(p-q) for p,q in zip(x,y)):.3g}")
PY
  }
done
Q=/tmp/qs-after/runs
for v in before after; do
  B=/tmp/b-$v/app/bimamba
  $B export --model $Q/student_kd --out /tmp/$v.bmd > $O/export-$v.log 2>&1; echo "export $v rc=$?"
  $B eval --model ckpt=$Q/student_kd,bmd=/tmp/$v.bmd --tasks wikitext2=$WIKI --window 256 --max-windows 64 \
    --threads 8 --binary-kernel i16lut,lut3 --out $O/eval-$v.json --quiet > $O/eval-$v.log 2>&1; echo "eval $v rc=$?"
  cat $O/eval-$v.md 2>/dev/null
done
cmp /tmp/before.bmd /tmp/after.bmd && echo "export: identical files"
echo "evals done at $SECONDS s"
for round in 1; do
  for v in before after; do
    /tmp/b-$v/app/bimamba bench cpu --shape 780m --threads 2 --kernels i16lut --reps 3 > $O/bench-$v-$round.log 2>&1
    echo "bench $v $round rc=$?"; grep -E "tok/s|binary|fp16" $O/bench-$v-$round.log | head -8
  done
done
echo "done at $SECONDS s"
