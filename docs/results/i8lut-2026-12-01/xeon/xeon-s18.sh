#!/bin/bash
# Session 18 Xeon runs: i16lut against i8lut (one binary, HEAD), bench cpu at a shape.
# usage: .ext/xeon-s18.sh build|s27t16|s27t2|s780t16|s780t2|micro|pack
set -u
B=/tmp/bb
bench() {  # bench SHAPE THREADS KERNELS TAG
  /tmp/bm-main bench cpu --shape $1 --threads $2 --state f16 --kernels $3 --tokens 32 --reps 3 --dir /tmp/bbw-$1 > $OUT/$4.txt 2>&1
  printf "%-16s " "$4"; grep -E "binary i(16|8)lut.*tok/s \(reps|compute per thread|streaming read" $OUT/$4.txt | sed 's/memory bandwidth (streaming read[^:]*//' | tr -s ' ' | tr '\n' ' '; echo
  grep -E "binary at .* of the memory roofline" $OUT/$4.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A4 "where decode time" $OUT/$4.txt | grep binary
}
for step in "$@"; do case "$step" in
build)
  lscpu | grep -E "Model name|Thread|Core|Socket|Flags" | sed 's/Flags:.*\(avx512_vbmi\b\).*\(avx512_vnni\).*/Flags: ... \1 ... \2 .../' | cut -c1-150
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA=$PWD/.gpudata > $OUT/cfg.log 2>&1 || tail -5 $OUT/cfg.log
  cmake --build $B -j 16 --target bimamba test_bitgemv > $OUT/build.log 2>&1 || grep error $OUT/build.log | head
  cp $B/app/bimamba /tmp/bm-main; echo "built main at $SECONDS s"
  $B/tests/test_bitgemv --gtest_filter='BitGemvI8*:BitGemvI16*' 2>&1 | tail -3 ;;
s27t16) for i in 1 2; do bench 2.7b 16 i16lut,i8lut 27-t16-a$i; bench 2.7b 16 i8lut,i16lut 27-t16-b$i; done; echo "s27t16 done at $SECONDS s" ;;
s27t16x1) bench 2.7b 16 i16lut,i8lut 27-t16-c1; bench 2.7b 16 i8lut,i16lut 27-t16-d1; echo "s27t16x1 done at $SECONDS s" ;;
s27t2) bench 2.7b 2 i16lut,i8lut 27-t2-a1; bench 2.7b 2 i8lut,i16lut 27-t2-b1; echo "s27t2 done at $SECONDS s" ;;
s780t16) bench 780m 16 i16lut,i8lut 780-t16-a1; bench 780m 16 i8lut,i16lut 780-t16-b1; echo "s780t16 done at $SECONDS s" ;;
s780t2) bench 780m 2 i16lut,i8lut 780-t2-a1; bench 780m 2 i8lut,i16lut 780-t2-b1; echo "s780t2 done at $SECONDS s" ;;
variant)  # the files of .ext/var/prev built as /tmp/bm-prev
  v=prev; mkdir -p /tmp/orig-$v
  (cd .ext/var/$v && find . -type f) | while read f; do mkdir -p /tmp/orig-$v/$(dirname $f); cp $f /tmp/orig-$v/$f; cp .ext/var/$v/$f $f; touch $f; done
  if cmake --build $B -j 16 --target bimamba > $OUT/build-$v.log 2>&1; then cp $B/app/bimamba /tmp/bm-$v; echo "built $v at $SECONDS s"; else echo "variant $v failed"; grep -m5 error $OUT/build-$v.log; fi
  (cd /tmp/orig-$v && find . -type f) | while read f; do cp /tmp/orig-$v/$f $f; touch $f; done ;;
micro)
  g++ -std=c++20 -O2 -march=native -I. .ext/s18/lib.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/lib && for t in 16; do /tmp/lib 2560 5120 9 $t 64; /tmp/lib 2560 5120 9 $t 64 1; /tmp/lib 10576 2560 9 $t 64; /tmp/lib 10576 2560 9 $t 64 1; done ;;
vab27t16)  # main (grain rule) against prev, i8lut only
  for i in 1 2; do for v in main prev; do
    /tmp/bm-$v bench cpu --shape 2.7b --threads 16 --state f16 --kernels i8lut --tokens 32 --reps 3 --dir /tmp/bbw-2.7b > $OUT/v27-$v-$i.txt 2>&1
    printf "%-10s " "$v-$i"; grep -E "binary i8lut.*tok/s \(reps|compute per thread" $OUT/v27-$v-$i.txt | tr -s ' ' | tr '\n' ' '; echo
    grep -E "binary at .* of the memory roofline" $OUT/v27-$v-$i.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A3 "where decode time" $OUT/v27-$v-$i.txt | grep binary
  done; done; echo "vab27t16 done at $SECONDS s" ;;
micro2)
  g++ -std=c++20 -O2 -march=native -I. .ext/s18/lib.cpp $B/kernels/libbimamba_kernels_cpu.a -lpthread -o /tmp/lib && /tmp/lib 2560 5120 9 16 64 ;;
vab27t16x1)  # main (own input per thread) against prev (caller-prepared), i8lut only, one pair
  for v in main prev; do
    /tmp/bm-$v bench cpu --shape 2.7b --threads 16 --state f16 --kernels i8lut --tokens 32 --reps 3 --dir /tmp/bbw-2.7b > $OUT/w27-$v.txt 2>&1
    printf "%-10s " "$v"; grep -E "binary i8lut.*tok/s \\(reps|compute per thread" $OUT/w27-$v.txt | tr -s ' ' | tr '\n' ' '; echo
    grep -E "binary at .* of the memory roofline" $OUT/w27-$v.txt | sed "s/.*state: decode/  decode/; s/resident.*binary at/binary at/; s/(target >= 80 %);.*//"; grep -A3 "where decode time" $OUT/w27-$v.txt | grep binary
  done; echo "vab27t16x1 done at $SECONDS s" ;;
pack) (cd $OUT && tar czf logs-$(date +%H%M%S).tgz *.txt *.log 2>/dev/null; rm -f *.txt *.log) ;;
esac done
