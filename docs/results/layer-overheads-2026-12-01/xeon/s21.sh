#!/bin/bash
# Session 21 Xeon runs. usage: .ext/s21.sh buildfast|hand|t27|... (steps in order)
set -u
B=/tmp/bb
step() { echo "=== $* ($(date +%T), $SECONDS s)"; }
benchv() {  # benchv BINARY SHAPE THREADS TAG [env...]
  local bin=$1 shape=$2 thr=$3 tag=$4; shift 4
  env "$@" $bin bench cpu --shape $shape --threads $thr --state f16 --kernels i16lut --tokens 32 --reps 3 --dir /tmp/bbw-$shape > $OUT/$tag.txt 2>&1
  printf "%-16s " "$tag"; grep -E "binary i16lut.*tok/s \(reps|compute per thread|thread hand-off" $OUT/$tag.txt | sed 's/(the threads share.*//; s/(a core each)//; s/(median of 200.*//' | tr -s ' ' | tr '\n' ' '; echo
  grep -E "binary at .* of the memory roofline" $OUT/$tag.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A3 "where decode time" $OUT/$tag.txt | grep "binary i16"
}
for s in "$@"; do case "$s" in
buildfast) step buildfast
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|L2|L3|NUMA node" | cut -c1-120
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF -DBIMAMBA_BUILD_TESTS=OFF \
    -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  cp $B/app/bimamba /tmp/bm-main; echo "built at $SECONDS s" ;;
hand) step hand
  g++ -std=c++20 -O2 -march=native .ext/s21/handoff.cpp -lpthread -o /tmp/handoff
  /tmp/handoff 16 2000 3 1500 | tee $OUT/hand16.txt
  /tmp/handoff 8 2000 1 1500 | tee $OUT/hand8.txt ;;
rate) step rate
  g++ -std=c++20 -O2 -march=native -I. .ext/s21/rate.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/rate
  /tmp/rate 10576 2560 16 64 5 | tee $OUT/rate-in16.txt
  /tmp/rate 2560 5120 16 64 5 | tee $OUT/rate-out16.txt
  /tmp/rate 10576 2560 8 64 5 | tee $OUT/rate-in8.txt ;;
chunks) step chunks
  g++ -std=c++20 -O2 -march=native -I. .ext/s21/rate.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/rate
  /tmp/rate 10576 2560 16 64 5 4 8 16 | tee $OUT/chunks-in16.txt
  /tmp/rate 2560 5120 16 64 5 4 8 | tee $OUT/chunks-out16.txt ;;
c27) step c27; for i in 1 2; do for c in 4 8; do benchv /tmp/bm-main 2.7b 16 c27-$c-$i BIMAMBA_POOL_CHUNKS=$c; done; done ;;
build) step build
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
    -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba test_bitgemv > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  cp $B/app/bimamba /tmp/bm-main; cp $B/kernels/libbimamba_kernels_cpu.a /tmp/main-kernels.a; echo "built at $SECONDS s"
  [ "${NOTEST:-}" ] || $B/tests/test_bitgemv --gtest_filter='BitGemvI16*:ThreadPool*' 2>&1 | grep -E "^\[  |OK|FAIL" | tail -12 ;;
variant) step variant  # the files of .ext/var/prev built as /tmp/bm-prev and /tmp/prev-kernels.a
  v=prev; mkdir -p /tmp/orig-$v
  (cd .ext/var/$v && find . -type f) | while read f; do mkdir -p /tmp/orig-$v/$(dirname $f); cp $f /tmp/orig-$v/$f; cp .ext/var/$v/$f $f; touch $f; done
  if cmake --build $B -j 16 --target bimamba > $OUT/build-$v.log 2>&1; then cp $B/app/bimamba /tmp/bm-prev; cp $B/kernels/libbimamba_kernels_cpu.a /tmp/prev-kernels.a; echo "built $v at $SECONDS s"; else echo "variant $v failed"; grep -m5 error $OUT/build-$v.log; fi
  (cd /tmp/orig-$v && find . -type f) | while read f; do cp /tmp/orig-$v/$f $f; touch $f; done ;;
prep) step prep
  for v in main prev; do g++ -std=c++20 -O2 -march=native -I. .ext/s21/prep.cpp /tmp/$v-kernels.a -lpthread -o /tmp/prep-$v; done
  for i in 1 2; do for v in main prev; do echo "[$v]"; /tmp/prep-$v 16; done; done | tee $OUT/prep.txt ;;
ab27) step ab27; for i in 1 2 3; do for v in prev main; do benchv /tmp/bm-$v 2.7b 16 ab27-$v-$i; done; done ;;
ab27r) step ab27r; for i in 4 5; do for v in main prev; do benchv /tmp/bm-$v 2.7b 16 ab27-$v-$i; done; done ;;
t27) step t27; for t in 16 12 8; do benchv /tmp/bm-main 2.7b $t t27-$t; done ;;
t27b) step t27b; for t in 14 16; do benchv /tmp/bm-main 2.7b $t t27b-$t; done ;;
esac done
echo "end at $SECONDS s"
