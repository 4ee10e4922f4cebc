#!/bin/bash
# Session 19 device runs. usage: .ext/s19.sh build|prep|teacher|student|export|evalcpu|evalgpu|pack ...
set -u
B=/tmp/bb; W=/tmp/w; CLI=$B/app/bimamba; G=$PWD/.gpudata
mkdir -p $W
step() { echo "=== $* ($(date +%T), $SECONDS s)"; }
for s in "$@"; do case "$s" in
build) step build
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  lscpu | grep -E "Model name|^CPU\(s\)|Thread" | cut -c1-120
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
    -DBIMAMBA_BUILD_TESTS=OFF -DBIMAMBA_CUDA=ON -DBIMAMBA_SHARED_DATA=$G > $OUT/cfg.log 2>&1 || { tail -20 $OUT/cfg.log; exit 1; }
  cmake --build $B -j 16 --target bimamba > $OUT/build.log 2>&1 || { grep -m20 -E "error|Error" $OUT/build.log; exit 1; }
  echo "built at $SECONDS s" ;;
prep) step prep
  $CLI prepare $G/train-00.txt.xz --unit line --tokenizer $G/tokenizer.model --val-fraction 0.01 --out $W/data 2>&1 | tail -1 ;;
teacher) step teacher
  cat > $W/teacher.json <<JSON
{"data": "$W/data", "model": "130m", "steps": ${TSTEPS:-800}, "seq_len": 1024, "batch_size": 16,
 "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 50, "eval_every": 200, "eval_batches": 16,
 "checkpoint_every": 200, "log_every": 50, "device": "cuda", "seed": 1}
JSON
  $CLI train --config $W/teacher.json --run-dir $W/teacher --quiet 2>&1 | tail -2 ;;
student) step student
  cat > $W/student.json <<JSON
{"data": "$W/data", "model": {"preset": "130m", "binarize": "in_proj+out_proj"}, "steps": ${SSTEPS:-400},
 "seq_len": 1024, "batch_size": 16, "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 50,
 "eval_every": 100, "eval_batches": 16, "checkpoint_every": 100, "log_every": 50,
 "loss": "soft_ce", "teacher": "$W/teacher", "init_from": "$W/teacher", "device": "cuda", "seed": 1}
JSON
  $CLI train --config $W/student.json --run-dir $W/student --quiet 2>&1 | tail -2 ;;
export) step export
  $CLI export --model $W/student --out $W/student.bmd 2>&1 | tail -2; ls -la $W/student.bmd ;;
evalcpu) step "evalcpu: engine, 16 threads"
  $CLI eval --model student=$W/student.bmd --tasks wikitext2=$G/wikitext2-valid.txt,text:wiki=$G/valid.txt.xz,text:gutenberg=$G/gutenberg-valid.txt.xz \
    --window 1024 --max-windows ${WINDOWS:-64} --threads 16 --binary-kernel i16lut,i8lut,lut3 --quiet --out $OUT/eval-engine.json 2>&1 | tail -12 ;;
evalgpu) step "evalgpu: LibTorch"
  $CLI eval --model torch=$W/student --tasks wikitext2=$G/wikitext2-valid.txt,text:wiki=$G/valid.txt.xz,text:gutenberg=$G/gutenberg-valid.txt.xz \
    --window 1024 --max-windows ${WINDOWS:-64} --device cuda --quiet --out $OUT/eval-torch.json 2>&1 | tail -8 ;;
pack) step pack
  cp $W/teacher/metrics.jsonl $OUT/teacher-metrics.jsonl 2>/dev/null; cp $W/student/metrics.jsonl $OUT/student-metrics.jsonl 2>/dev/null
  [ -f $W/student.bmd ] && (cd $OUT && split -b 15M -d $W/student.bmd student.bmd.part && sha256sum $W/student.bmd | tee student.bmd.sha256)
  ls -la $OUT ;;
esac done
