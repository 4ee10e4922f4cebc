#!/bin/bash
# 780M, 2 threads, alternated: new (this session) and prev (6eaa8d0)
cd /tmp/epyc21
for i in 1 2 3 4 5; do
  if [ $((i % 2)) = 1 ]; then order="new prev"; else order="prev new"; fi
  for v in $order; do
    bin=/work/main/build/app/bimamba; [ $v = prev ] && bin=/tmp/prevbuild/app/bimamba
    $bin bench cpu --shape 780m --threads 2 --state f16 --kernels i16lut --tokens 32 --reps 3 --dir /tmp/bimamba-bench > $v-$i.txt 2>&1
    printf "%s-%s " $v $i; grep -E "binary i16lut q8h, f16 state:" $v-$i.txt | sed 's/.*state: //' | tr '\n' ' '; grep -oE "binary at [0-9]+ %" $v-$i.txt | head -1
  done
done
echo done
