#!/bin/bash
# Session 22 Xeon runs. usage: .ext/s22.sh build|variant|ab N|prof ... (steps in order)
set -u
B=/tmp/bb
step() { echo "=== $* ($(date +%T), $SECONDS s)"; }
while [ $# -gt 0 ]; do s=$1; shift; case "$s" in
build) step build
  lscpu | grep -E "Model name|^CPU\(s\)|L2|L3" | cut -c1-120
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
    -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba test_bitgemv test_engine > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  cp $B/app/bimamba /tmp/bm-main; echo "built at $SECONDS s"
  $B/tests/test_bitgemv --gtest_filter='BitGemvI16*:BitGemmI16*:ThreadPool*' 2>&1 | grep -E "^\[  |OK|FAIL" | tail -14
  $B/tests/test_engine 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED" | tail -5 ;;
variant) step variant  # the files of .ext/var/prev built as /tmp/bm-prev
  v=prev; mkdir -p /tmp/orig-$v
  (cd .ext/var/$v && find . -type f) | while read f; do mkdir -p /tmp/orig-$v/$(dirname $f); cp $f /tmp/orig-$v/$f; cp .ext/var/$v/$f $f; touch $f; done
  if cmake --build $B -j 16 --target bimamba > $OUT/build-$v.log 2>&1; then cp $B/app/bimamba /tmp/bm-prev; echo "built $v at $SECONDS s"; else echo "variant $v failed"; grep -m5 error $OUT/build-$v.log; fi
  (cd /tmp/orig-$v && find . -type f) | while read f; do cp /tmp/orig-$v/$f $f; touch $f; done ;;
ab) n=$1; shift; step ab $n
  AB_DIR=$OUT/ab scripts/ab-cpu.sh /tmp/bm-prev /tmp/bm-main $n --shape 2.7b --threads 16 --state f16 --kernels i16lut --tokens 32 --reps 3 --dir /tmp/bbw 2>&1 | tee -a $OUT/ab.txt ;;
kbuild) step kbuild
  if [ ! -f $B/build.ninja ]; then TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
    cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
      -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }; fi
  touch kernels/cpu/BitGemvI16.cpp kernels/cpu/BitGemvI16.h
  cmake --build $B -j 16 --target bimamba_kernels_cpu > $OUT/kbuild.log 2>&1 || { grep -m20 -E "error|Error" $OUT/kbuild.log; exit 1; }
  g++ -std=c++20 -O2 -march=native -I. .ext/s22/proj.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/proj; echo "built at $SECONDS s" ;;
proj) step proj
  for i in 1 2; do /tmp/proj 10576 2560 16 64 15 1; /tmp/proj 2560 5120 16 64 15 0; done | tee -a $OUT/proj.txt ;;
prof) step prof
  for f in $OUT/ab/new-1.txt $OUT/ab/old-1.txt; do [ -f $f ] && { echo "[$f]"; grep -A4 "where decode time" $f; grep -E "thread hand-off|roofline" $f; }; done ;;
esac done
echo "end at $SECONDS s"
