#!/bin/bash
# Session 20 Xeon runs: i16lut column slices. usage: .ext/s20.sh build|micro|e27|e780|pack ...
set -u
B=/tmp/bb
step() { echo "=== $* ($(date +%T), $SECONDS s)"; }
bench() {  # bench SHAPE THREADS "ENV=V ENV=V" TAG
  env $3 /tmp/bm-main bench cpu --shape $1 --threads $2 --state f16 --kernels i16lut --tokens 32 --reps 3 --dir /tmp/bbw-$1 > $OUT/$4.txt 2>&1
  printf "%-14s " "$4"; grep -E "binary i16lut.*tok/s \(reps|compute per thread" $OUT/$4.txt | sed 's/(the threads share.*//' | tr -s ' ' | tr '\n' ' '; echo
  grep -E "binary at .* of the memory roofline" $OUT/$4.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A3 "where decode time" $OUT/$4.txt | grep "binary i16"
}
benchv() {  # benchv VARIANT SHAPE THREADS TAG
  /tmp/bm-$1 bench cpu --shape $2 --threads $3 --state f16 --kernels i16lut --tokens 32 --reps 3 --dir /tmp/bbw-$2 > $OUT/$4.txt 2>&1
  printf "%-16s " "$4"; grep -E "binary i16lut.*tok/s \(reps|compute per thread" $OUT/$4.txt | sed 's/(the threads share.*//; s/(a core each)//' | tr -s ' ' | tr '\n' ' '; echo
  grep -E "binary at .* of the memory roofline" $OUT/$4.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A3 "where decode time" $OUT/$4.txt | grep "binary i16"
}
for s in "$@"; do case "$s" in
build) step build
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|L1d|L2|L3" | cut -c1-120
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
    -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba test_bitgemv > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  cp $B/app/bimamba /tmp/bm-main; echo "built at $SECONDS s"
  $B/tests/test_bitgemv --gtest_filter='BitGemvI16*' 2>&1 | grep -E "OK|FAIL|PASSED|note" ;;
micro) step micro
  g++ -std=c++20 -O2 -march=native -I. .ext/s20/slices.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/slices
  /tmp/slices 2560 5120 15 16 64 1 2 4
  /tmp/slices 1536 3072 15 16 48 1 2
  /tmp/slices 2560 5120 9 8 64 1 2 ;;
buildfast) step buildfast
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF -DBIMAMBA_BUILD_TESTS=OFF \
    -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  cp $B/app/bimamba /tmp/bm-main; echo "built at $SECONDS s" ;;
ab780x3) step ab780x3; for i in 1 2 3; do for v in prev main; do benchv $v 780m 16 ab780-$v-$i; done; done ;;
variant) step variant  # the files of .ext/var/prev built as /tmp/bm-prev and /tmp/prev-kernels.a
  g++ -std=c++20 -O2 -march=native -I. .ext/s20/prefetch.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/pf
  v=prev; mkdir -p /tmp/orig-$v
  (cd .ext/var/$v && find . -type f) | while read f; do mkdir -p /tmp/orig-$v/$(dirname $f); cp $f /tmp/orig-$v/$f; cp .ext/var/$v/$f $f; touch $f; done
  if cmake --build $B -j 16 --target bimamba > $OUT/build-$v.log 2>&1; then cp $B/app/bimamba /tmp/bm-$v; cp $B/kernels/libbimamba_kernels_cpu.a /tmp/prev-kernels.a; echo "built $v at $SECONDS s"; else echo "variant $v failed"; grep -m5 error $OUT/build-$v.log; fi
  (cd /tmp/orig-$v && find . -type f) | while read f; do cp /tmp/orig-$v/$f $f; touch $f; done
  g++ -std=c++20 -O2 -march=native -I. .ext/s20/prefetch.cpp /tmp/prev-kernels.a -lpthread -o /tmp/pf-prev ;;
pool) step pool
  for i in 1 2; do for v in pf pf-prev; do echo "[$v]"; /tmp/$v 2560 5120 9 16 64 "x=0" "BIMAMBA_OWN_MIN_COLS=0" | sed -n '2p;4p'; done; done
  for v in pf pf-prev; do echo "[$v]"; /tmp/$v 10576 2560 9 16 64 "x=0" "BIMAMBA_OWN_MIN_COLS=0" | sed -n '2,4p'; done ;;
ab27) step ab27; for i in 1 2; do for v in main prev; do benchv $v 2.7b 16 ab27-$v-$i; done; done ;;
ab780) step ab780; for v in main prev; do benchv $v 780m 16 ab780-$v; done ;;
ab780t2) step ab780t2; for v in main prev; do benchv $v 780m 2 ab780t2-$v; done ;;
micro2) step micro2
  g++ -std=c++20 -O2 -march=native -I. .ext/s20/prefetch.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/pf
  /tmp/pf 2560 5120 15 16 64 "x=0" "BIMAMBA_PF_BYTES=16384" "BIMAMBA_PF_BYTES=32768" "BIMAMBA_PF_BYTES=65536" "warm"
  /tmp/pf 10576 2560 15 16 64 "x=0" "BIMAMBA_OWN_MIN_COLS=0" "BIMAMBA_OWN_MIN_COLS=0;BIMAMBA_PF_BYTES=32768" "warm" ;;
e27) step e27; for i in 1 2; do bench 2.7b 16 "X=0" 27-base-$i; bench 2.7b 16 "BIMAMBA_PF_BYTES=32768" 27-pf-$i; done ;;
e27o) step e27o; for i in 1 2; do bench 2.7b 16 "BIMAMBA_OWN_MIN_COLS=0 BIMAMBA_PF_BYTES=32768" 27-own-$i; bench 2.7b 16 "X=0" 27-base2-$i; done ;;
pack) (cd $OUT && tar czf logs-$(date +%H%M%S).tgz *.txt *.log 2>/dev/null; rm -f *.txt *.log) ;;
esac done
echo "end at $SECONDS s"
