#!/usr/bin/env bash
# One batched check on the GPU machine (H100/H200, PyTorch 2.11 + LibTorch,
# no Qt): build headless with CUDA, run the model/CUDA tests, Hugging Face
# parity, a ~130M-parameter bf16 distillation (full-precision Mamba-2 teacher ->
# Bi-Mamba student) and the training benchmark. Results go to $OUT.
#
#   OUT=/tmp/gpu-out scripts/gpu-check.sh [parts...]   parts: build tests parity train teachers bigteacher energy bench refbench zeroshot profile ddp det cpu llama study numerics telemetry
# Expects .gpudata/ (tokenizer.model, shakespeare.txt, fortunes/, wiki_valid.txt;
# for `study`, .gpudata/shared/ laid out as ../shared/data with the files
# studies/paper-small.toml names)
# and, where the machine lacks them, .deps/ (googletest sources, nlohmann/toml++ headers).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/gpu-out}"
B="${GPU_BUILD_DIR:-/tmp/bimamba-gpu-build}"
PARTS="${*:-build tests parity train bench}"
mkdir -p "$OUT"
CLI="$B/app/bimamba"
has() { [[ " $PARTS " == *" $1 "* ]]; }
step() { echo; echo "=== $* ($(date +%T))"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if has build; then
  step build
  TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
  cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" \
    -DBIMAMBA_BUILD_GUI=OFF -DBIMAMBA_CUDA=ON -DBIMAMBA_SHARED_DATA="$ROOT/.gpudata" > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build "$B" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS} > "$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -30; exit 1; }
  echo "built in $SECONDS s"
fi

if has tests; then
  step tests
  (cd "$B" && ctest -j 4 --output-on-failure -R "${GPU_TESTS:-test_model|test_cuda|test_checkpoint|test_teacher_cache|test_llama|test_engine}") > "$OUT/ctest.log" 2>&1
  grep -E "tests passed|Failed|\*\*\*" "$OUT/ctest.log" | tail -15
  grep -E "max rel|rel err|speed|GB/s" "$OUT/ctest.log" | head -20
fi

if has parity; then
  step "parity: transformers Mamba2ForCausalLM"
  python3 "$ROOT/tests/reference/hf_mamba2_parity.py" /tmp/hf_mamba2 > "$OUT/parity_mamba2.log" 2>&1 || tail -5 "$OUT/parity_mamba2.log"
  "$CLI" logits --model /tmp/hf_mamba2/model --expected /tmp/hf_mamba2/expected.safetensors 2>&1 | tee -a "$OUT/parity_mamba2.log"
  step "parity: transformers LlamaForCausalLM (sharded)"
  python3 "$ROOT/tests/reference/hf_llama_parity.py" /tmp/hf_llama > "$OUT/parity_llama.log" 2>&1 || tail -5 "$OUT/parity_llama.log"
  "$CLI" logits --model /tmp/hf_llama/model --expected /tmp/hf_llama/expected.safetensors --tol 1e-3 2>&1 | tee -a "$OUT/parity_llama.log"
fi

if has train; then
  step "train: 130M teacher then Bi-Mamba student, bf16"
  W=/tmp/gpu-runs; rm -rf "$W"; mkdir -p "$W"
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" "$ROOT/.gpudata/fortunes" --unit paragraph \
    --tokenizer "$ROOT/.gpudata/tokenizer.model" --out "$W/prep" 2>&1 | tail -2
  STEPS="${TRAIN_STEPS:-400}"
  cat > "$W/teacher.json" <<JSON
{"data": "$W/prep", "model": "130m", "steps": $STEPS, "seq_len": 512, "batch_size": 16,
 "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 40, "eval_every": 100, "eval_batches": 16,
 "checkpoint_every": $STEPS, "log_every": 20, "device": "cuda", "seed": 1}
JSON
  cat > "$W/student.json" <<JSON
{"data": "$W/prep", "model": {"preset": "130m", "binarize": "in_proj+out_proj"}, "steps": $STEPS,
 "seq_len": 512, "batch_size": 16, "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 40,
 "eval_every": 100, "eval_batches": 16, "checkpoint_every": $STEPS, "log_every": 20,
 "loss": "soft_ce", "teacher": "$W/teacher", "init_from": "$W/teacher", "device": "cuda", "seed": 2}
JSON
  "$CLI" train --config "$W/teacher.json" --run-dir "$W/teacher" > "$OUT/train_teacher.log" 2>&1; echo "teacher exit $?"
  "$CLI" train --config "$W/student.json" --run-dir "$W/student" > "$OUT/train_student.log" 2>&1; echo "student exit $?"
  for r in teacher student; do
    cp "$W/$r/metrics.jsonl" "$OUT/metrics_$r.jsonl" 2>/dev/null
    echo "$r:"; grep '"val"' "$W/$r/metrics.jsonl" | tail -2
    grep '"train"' "$W/$r/metrics.jsonl" | tail -1
  done
  "$CLI" eval --model "teacher=$W/teacher,bi-mamba=$W/student" --tasks "wikitext2=$ROOT/.gpudata/wiki_valid.txt" \
    --window 512 --max-windows 32 --quiet --out "$OUT/eval_wiki.json" 2>&1 | tail -6
fi

if has teachers; then
  step "teachers: LLaMA-architecture teacher (transformers) -> Bi-Mamba student, directly and from a top-k logits cache"
  W=/tmp/gpu-teach; rm -rf "$W"; mkdir -p "$W"
  python3 - "$W/llama" <<'PY'
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=False)
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(sys.argv[1], safe_serialization=True, max_shard_size="20MB")
PY
  ls "$W/llama"
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" --out "$W/prep" 2>&1 | tail -1
  "$CLI" cache-teacher --teacher "$W/llama" --data "$W/prep" --seq-len 256 --k 64 --device cuda --out "$W/cache.bin" 2>&1 | tail -1
  for mode in teacher cache; do
    if [ $mode = teacher ]; then src="\"teacher\": \"$W/llama\""; else src="\"teacher_cache\": \"$W/cache.bin\""; fi
    cat > "$W/$mode.json" <<JSON
{"data": "$W/prep", "model": {"preset": "small", "vocab_size": 32000, "binarize": "in_proj+out_proj"}, "steps": 60,
 "seq_len": 256, "batch_size": 16, "lr": 2e-3, "final_lr": 2e-4, "warmup_steps": 10, "eval_every": 30, "eval_batches": 8,
 "checkpoint_every": 60, "log_every": 10, "loss": "soft_ce", $src, "device": "cuda", "seed": 3}
JSON
    "$CLI" train --config "$W/$mode.json" --run-dir "$W/run_$mode" > "$OUT/teach_$mode.log" 2>&1; echo "$mode exit $?"
    grep '"train"' "$W/run_$mode/metrics.jsonl" | sed -n '1p;$p'
  done
fi

if has bigteacher; then
  # A LLaMA-2-70B-shaped teacher (bf16, 138 GB, written sparse: headers only)
  # must be refused before training, naming its size and the GPU's free memory.
  step "bigteacher: a teacher larger than the GPU fails before training"
  W=/tmp/gpu-big; rm -rf "$W"; mkdir -p "$W/llama70b"
  python3 - "$W/llama70b" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
H, I, L, V, KV = 8192, 28672, 80, 32000, 8
cfg = dict(model_type="llama", hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=64,
           num_key_value_heads=KV, vocab_size=V, rms_norm_eps=1e-5, torch_dtype="bfloat16")
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
shapes = {"model.embed_tokens.weight": [V, H], "lm_head.weight": [V, H], "model.norm.weight": [H]}
for l in range(L):
    p = f"model.layers.{l}."
    shapes.update({p + "self_attn.q_proj.weight": [H, H], p + "self_attn.k_proj.weight": [KV * 128, H],
                   p + "self_attn.v_proj.weight": [KV * 128, H], p + "self_attn.o_proj.weight": [H, H],
                   p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H], p + "mlp.down_proj.weight": [H, I],
                   p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H]})
hdr, off = {}, 0
for k, s in shapes.items():
    n = 2
    for x in s: n *= x
    hdr[k] = {"dtype": "BF16", "shape": s, "data_offsets": [off, off + n]}
    off += n
b = json.dumps(hdr).encode()
b += b" " * ((8 - len(b) % 8) % 8)
path = os.path.join(d, "model.safetensors")
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(b)) + b)
os.truncate(path, 8 + len(b) + off)
print(f"sparse teacher: {off / 1e9:.1f} GB declared, {os.stat(path).st_blocks * 512 / 1e6:.1f} MB on disk")
PY
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" --out "$W/prep" 2>&1 | tail -1
  cat > "$W/big.json" <<JSON
{"data": "$W/prep", "model": {"preset": "small", "vocab_size": 32000}, "steps": 10, "seq_len": 256, "batch_size": 8,
 "loss": "soft_ce", "teacher": "$W/llama70b", "device": "cuda"}
JSON
  start=$SECONDS
  "$CLI" train --config "$W/big.json" --run-dir "$W/run" > "$OUT/bigteacher.log" 2>&1; echo "exit $? after $((SECONDS - start)) s"
  tail -2 "$OUT/bigteacher.log"; ls "$W/run/checkpoints" 2>/dev/null | head -3
fi

if has energy; then
  step "energy: GPU generation with NVML energy per token"
  W=/tmp/gpu-energy; rm -rf "$W"; mkdir -p "$W"
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" --out "$W/prep" 2>&1 | tail -1
  echo '{"data": "'$W/prep'", "model": {"preset": "130m", "vocab_size": 32000}, "steps": 30, "seq_len": 256, "batch_size": 8, "device": "cuda", "checkpoint_every": 30}' > "$W/m.json"
  "$CLI" train --config "$W/m.json" --run-dir "$W/run" --quiet > "$OUT/energy_train.log" 2>&1; echo "train exit $?"
  "$CLI" generate --models "130m=$W/run" --prompt "ROMEO:" --max-tokens 256 --device cuda 2>&1 | tail -3 | tee "$OUT/energy_generate.log"
  "$CLI" generate --models "130m=$W/run" --prompt "ROMEO:" --max-tokens 64 --device cpu --threads 8 2>&1 | tail -2 | tee -a "$OUT/energy_generate.log"
fi

if has bench; then
  # Ours swept over micro-batches (BENCH_MB, a comma list); `refbench`: the
  # mamba_ssm reference, same sweep (both sides at their best: issue #21).
  step "bench train (780M shape)"
  "$CLI" bench train --preset 780m --seq 2048 --micro-batch "${BENCH_MB:-4,8,16}" --steps "${BENCH_STEPS:-6}" --warmup 2 \
    --teacher "${BENCH_TEACHER:-off}" ${BENCH_ARGS:-} 2>&1 | tee -a "$OUT/bench_train.log" | tail -20
fi
if has refbench; then
  step "bench: reference (PyTorch + mamba_ssm Triton), same sweep"
  python3 "$ROOT/tests/reference/bench_mamba_ssm_reference.py" --mamba-path "$ROOT/.ext/mamba_ref" --preset 780m \
    --seq 2048 --micro-batch "${BENCH_MB:-4,8,16}" --steps "${BENCH_STEPS:-6}" --warmup 3 --teacher "${BENCH_TEACHER:-off}" \
    --fused-adamw 2>&1 | tee "$OUT/bench_ref.log" | tail -20
fi
if has zeroshot; then
  # All seven zero-shot tasks, every document, on a 130M Mamba-2 (ZS_MODEL, or
  # a teacher trained here for ZS_STEPS steps on the study's corpus): the time.
  step "zero-shot: all seven full tasks, 130M"
  Z="$ROOT/.gpudata/shared/zero-shot"
  M="${ZS_MODEL:-}"
  if [ -z "$M" ]; then
    W=/tmp/gpu-zs; rm -rf "$W"; mkdir -p "$W"
    "$CLI" prepare "$ROOT/.gpudata/shared/corpora/wikipedia-en-2014/train-00.txt.xz" --tokenizer "$ROOT/.gpudata/shared/llama2-tokenizer/tokenizer.model" \
      --unit line --out "$W/prep" 2>&1 | tail -1
    cat > "$W/t.json" <<JSON
{"data": "$W/prep", "model": "130m", "steps": ${ZS_STEPS:-200}, "seq_len": 1024, "batch_size": 16, "lr": 2e-3,
 "final_lr": 2e-4, "warmup_steps": 20, "eval_every": 1000, "checkpoint_every": 1000, "log_every": 50, "device": "cuda", "seed": 1}
JSON
    "$CLI" train --config "$W/t.json" --run-dir "$W/teacher" > "$OUT/zs_train.log" 2>&1; echo "train exit $? in $SECONDS s"
    M="$W/teacher"
  fi
  T="boolq=$Z/boolq/val.jsonl,piqa=$Z/piqa/valid.jsonl,hellaswag=$Z/hellaswag/hellaswag_val.jsonl,winogrande=$Z/winogrande/dev.jsonl"
  T="$T,arc_easy=$Z/arc_easy/ARC-Easy-Test.jsonl,arc_challenge=$Z/arc_challenge/ARC-Challenge-Test.jsonl,openbookqa=$Z/openbookqa/test.tsv"
  /usr/bin/time -v "$CLI" eval --model "mamba2-130m=$M" --tokenizer "$ROOT/.gpudata/shared/llama2-tokenizer/tokenizer.model" \
    --tasks "$T" --device cuda --batch-size "${ZS_BATCH:-64}" --quiet --out "$OUT/zero_shot_full.json" > "$OUT/zero_shot_full.log" 2>&1
  echo "eval exit $?"; grep -E "Elapsed|Maximum resident" "$OUT/zero_shot_full.log"; tail -8 "$OUT/zero_shot_full.log" | grep -v "^\s"
  python3 -c "import json;d=json.load(open('$OUT/zero_shot_full.json'));[print(k,v.get('n'),round(v.get('seconds',0),1),round(100*v.get('acc',0),1),round(100*v.get('acc_norm',0),1)) for m in d['models'] for k,v in m['results'].items()]"
fi
if has profile; then
  # Where a training step's GPU time goes, ours and the reference's, kernel by kernel.
  step "profile: bench train --profile (780M shape)"
  "$CLI" bench train --preset 780m --seq 2048 --micro-batch "${BENCH_MB:-4}" --steps 4 --warmup 2 \
    --teacher "${PROFILE_TEACHER:-off,on}" --profile - 2>&1 | tee "$OUT/profile_ours.log" | grep -v '^  ' | tail -8
  if [ -d "$ROOT/.ext/mamba_ref/mamba_ssm" ]; then
    step "profile: reference (PyTorch + mamba_ssm Triton)"
    python3 "$ROOT/tests/reference/bench_mamba_ssm_reference.py" --mamba-path "$ROOT/.ext/mamba_ref" --preset 780m \
      --seq 2048 --micro-batch "${BENCH_MB:-4}" --steps 4 --warmup 3 --teacher "${PROFILE_TEACHER:-off,on}" --profile \
      2>&1 | tee "$OUT/profile_ref.log" | grep -v '^  ' | tail -8
  else
    echo "no .ext/mamba_ref/mamba_ssm (fetched reference files): reference profile skipped"
  fi
fi

# A CUDA-free build of the CLI (and the kernel/engine tests) for the host CPU.
BC=/tmp/bimamba-cpu-build
build_cpu_cli() {
  # Configured once per warm machine; always built, so a later call with changed
  # sources does not run the previous call's binaries (ninja does nothing when current).
  if [ ! -f "$BC/build.ninja" ]; then
    TP=$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')
    cmake -S "$ROOT" -B "$BC" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DBIMAMBA_BUILD_GUI=OFF \
      -DBIMAMBA_CUDA=OFF -DBIMAMBA_SHARED_DATA="$ROOT/.gpudata" > "$OUT/cpu_configure.log" 2>&1 || tail -20 "$OUT/cpu_configure.log"
  fi
  cmake --build "$BC" -j "$(nproc)" --target test_bitgemv test_engine bimamba > "$OUT/cpu_build.log" 2>&1 \
    || grep -E "error" "$OUT/cpu_build.log" | head -20
}

if has cpu; then
  # The host CPU (AVX-512 where the lab machines have none): the kernel and
  # engine tests, then bench cpu with the AVX-512 and AVX2 i16lut kernels, on
  # 2 threads (the CI-class figure) and on all cores.
  step "cpu: AVX-512 kernels and the CPU engine on the host CPU"
  lscpu | grep -E "Model name|^CPU\(s\)|L3 cache"
  echo "avx512 flags: $(grep -o -w 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  build_cpu_cli
  for t in test_bitgemv test_engine; do
    [ -x "$BC/tests/$t" ] || continue
    "$BC/tests/$t" > "$OUT/cpu_$t.log" 2>&1; echo "$t exit $?: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/cpu_$t.log" | tr '\n' ' ')"
    grep -E "^note|FAILED|i16lut\]" "$OUT/cpu_$t.log" | head -8
  done
  for th in ${CPU_BENCH_THREADS-2 $(nproc)}; do  # CPU_BENCH_THREADS="" skips the benches
    for isa in avx512 avx2; do
      echo "--- bench cpu --isa $isa --threads $th"
      "$BC/app/bimamba" bench cpu --isa "$isa" --threads "$th" --state f16 --kernels i16lut,lut3 --tokens 64 \
        > "$OUT/cpu_bench_${isa}_$th.log" 2>&1 || tail -3 "$OUT/cpu_bench_${isa}_$th.log"
      grep -E "^bimamba bench|^memory|^780m|decode .* tok/s" "$OUT/cpu_bench_${isa}_$th.log"
    done
  done
fi

if has llama; then
  # llama.cpp against the CPU engine on the host CPU (issue #16): the host is
  # offline, so the llama.cpp sources travel as .llama/llama.cpp.tar.xz (made
  # from the llama-cpp-python 0.3.36 sdist by llama_cpp_bench.sh on a machine
  # with PyPI). LLAMA_RUNS: "prepare:SHAPE" or "SHAPE:THREADS:ROUNDS[:REPS]" items;
  # LLAMA_FORMATS: llama.cpp formats of the timed runs (default: the script's six).
  step "llama: llama.cpp against bench cpu on the host CPU"
  build_cpu_cli
  S=/tmp/scratch-llama
  if [ ! -f "$S/llama_cpp_python-0.3.36/vendor/llama.cpp/CMakeLists.txt" ]; then
    mkdir -p "$S/llama_cpp_python-0.3.36/vendor" && tar xJf "$ROOT/.llama/llama.cpp.tar.xz" -C "$S/llama_cpp_python-0.3.36/vendor"
  fi
  export LLAMA_BUILD_JOBS=$(nproc)
  for run in ${LLAMA_RUNS:-prepare:780m 780m:16:3}; do
    IFS=: read -r a b c d <<< "$run"
    if [ "$a" = prepare ]; then
      "$ROOT/tests/reference/llama_cpp_bench.sh" --shape "$b" --scratch "$S" --bimamba "$BC/app/bimamba" \
        --tokenizer "$ROOT/.gpudata/tokenizer.model" --prepare-only > "$OUT/llama_prepare_$b.log" 2>&1 \
        || tail -20 "$OUT/llama_prepare_$b.log"
      echo "prepared $b ($SECONDS s)"
    else
      "$ROOT/tests/reference/llama_cpp_bench.sh" --shape "$a" --threads "$b" --rounds "$c" --reps "${d:-5}" \
        --scratch "$S" --bimamba "$BC/app/bimamba" --tokenizer "$ROOT/.gpudata/tokenizer.model" \
        ${LLAMA_FORMATS:+--formats "$LLAMA_FORMATS"} \
        > "$OUT/llama_${a}_t$b.log" 2>&1 || tail -20 "$OUT/llama_${a}_t$b.log"
      grep -A14 "^date_utc\|medians over" "$OUT/llama_${a}_t$b.log" | tail -16
      tar czf "$OUT/llama_${a}_t$b.tar.gz" -C "$S/models/$a" $(cd "$S/models/$a" && ls -d results-* | tail -1) 2>/dev/null
    fi
  done
fi

if has ddp; then
  # Data parallel over NCCL (docs/multi-gpu.md), launched by hand with plain
  # env vars (two background processes). (1) Same global batch on 1 and 2 GPUs:
  # the per-step losses must agree within bf16 noise. (2) Throughput with the
  # same per-GPU micro-batch (weak scaling): efficiency = tok/s(2) / (2 x tok/s(1)).
  step "ddp: data-parallel training, 1 GPU vs 2 GPUs (NCCL)"
  NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  if [ "$NGPU" -lt 2 ]; then
    echo "ddp: needs 2 GPUs, this machine shows $NGPU: skipped"
  else
    grep -h "data-parallel" "$OUT/configure.log" 2>/dev/null   # NCCL compiled in? (from the build part)
    W=/tmp/gpu-ddp; rm -rf "$W"; mkdir -p "$W"
    export NCCL_NVLS_ENABLE=0            # no NVLink multicast (SHARP) on the lent machines
    export BIMAMBA_DIST_TIMEOUT_S="${DDP_NCCL_TIMEOUT_S:-600}"
    "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" \
      --out "$W/prep" 2>&1 | tail -1
    # ddp_run NAME NPROC CONFIG TIMEOUT: one process, or NPROC ranks on GPUs 0..NPROC-1; logs in $OUT.
    ddp_run() {
      local name=$1 n=$2 cfg=$3 to=$4 port=$((29500 + RANDOM % 2000)) pids=() rc=0 r
      if [ "$n" -eq 1 ]; then
        CUDA_VISIBLE_DEVICES=0 timeout "$to" "$CLI" train --config "$cfg" --run-dir "$W/$name" > "$OUT/ddp_$name.log" 2>&1 || rc=$?
      else
        for r in $(seq 0 $((n - 1))); do
          RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
            timeout "$to" "$CLI" train --config "$cfg" --run-dir "$W/$name" > "$OUT/ddp_${name}_rank$r.log" 2>&1 &
          pids+=($!)
        done
        for r in "${!pids[@]}"; do wait "${pids[$r]}" || { rc=$?; echo "ddp: $name rank $r exited $rc (124 = timeout); see $OUT/ddp_${name}_rank$r.log"; tail -3 "$OUT/ddp_${name}_rank$r.log"; }; done
      fi
      [ "$rc" -eq 0 ] || { echo "ddp: $name FAILED (exit $rc)"; tail -5 "$OUT/ddp_$name"*.log; }
      cp "$W/$name/metrics.jsonl" "$OUT/ddp_metrics_$name.jsonl" 2>/dev/null
      return $rc
    }
    # (1) 130M Bi-Mamba, global micro-batch 16 x 512 tokens, 2 micro-batches per step, bf16.
    DSTEPS="${DDP_STEPS:-40}"
    cat > "$W/match.json" <<JSON
{"data": "$W/prep", "model": {"preset": "130m", "binarize": "in_proj+out_proj"}, "steps": $DSTEPS, "seq_len": 512,
 "batch_size": 16, "grad_accum": 2, "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 10, "eval_every": 20,
 "eval_batches": 8, "checkpoint_every": 0, "log_every": 1, "device": "cuda", "seed": 5}
JSON
    # The noise floor: the same 1-GPU run twice. Our kernels and cuBLAS reduce
    # with atomics, so runs differ in the last bits and training amplifies that.
    ddp_run match1 1 "$W/match.json" 900 && ddp_run match1b 1 "$W/match.json" 900 && ddp_run match2 2 "$W/match.json" 900 &&
      python3 - "$W/match1" "$W/match2" "$W/match1b" <<'PY'
import json, sys
def load(d):
    t, v = {}, {}
    for line in open(d + "/metrics.jsonl"):
        j = json.loads(line)
        (t if j["type"] == "train" else v)[j["step"]] = j
    return t, v
(t1, v1), (t2, v2), (tb, vb) = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
steps = sorted(set(t1) & set(t2) & set(tb))
rel = lambda a, b: [abs(a[s]["loss"] - b[s]["loss"]) / abs(a[s]["loss"]) for s in steps]
r, rb = rel(t1, t2), rel(t1, tb)
for s in steps[:3] + steps[-3:]:
    print(f"  step {s:3d}: loss 1 GPU {t1[s]['loss']:.5f}  1 GPU again {tb[s]['loss']:.5f}  2 GPUs {t2[s]['loss']:.5f}")
print(f"ddp losses, same global batch, {len(steps)} steps: 1 vs 2 GPUs max rel diff {max(r):.2e} (step 1 {r[0]:.1e}, "
      f"step 2 {r[1]:.1e}); 1 GPU vs itself max rel diff {max(rb):.2e} (step 2 {rb[1]:.1e})")
for s in sorted(set(v1) & set(v2)):
    print(f"  val step {s}: 1 GPU {v1[s]['val_loss']:.5f}  2 GPUs {v2[s]['val_loss']:.5f}")
ok = r[0] < 1e-4 and max(r) <= 2 * max(max(rb), 1e-3)
print("ddp loss match:", "PASS" if ok else "FAIL", "(step 1 within 1e-4; then within twice the 1-GPU run-to-run noise)")
med = lambda xs: sorted(xs)[len(xs) // 2]
a = med([t1[s]["tok_per_s"] for s in steps[3:]]); b = med([t2[s]["tok_per_s"] for s in steps[3:]])
print(f"  same global batch (strong scaling): 1 GPU {a:.0f} tok/s, 2 GPUs {b:.0f} tok/s ({b / a:.2f}x)")
PY
    # (2) Throughput, same per-GPU micro-batch: 130M and the 780M shape (seq 2048, like bench train).
    tput() {  # tput NAME PRESET SEQ MB STEPS
      local n
      for n in 1 2; do
        cat > "$W/$1_$n.json" <<JSON
{"data": "$W/prep", "model": {"preset": "$2", "binarize": "in_proj+out_proj"}, "steps": $5, "seq_len": $3,
 "batch_size": $(($4 * n)), "lr": 1e-4, "final_lr": 1e-5, "warmup_steps": 2, "eval_every": 0, "eval_batches": 1,
 "checkpoint_every": 0, "keep_checkpoints": 1, "log_every": 1, "device": "cuda", "seed": 5}
JSON
        ddp_run "$1_$n" "$n" "$W/$1_$n.json" 1200 || return 1
      done
      python3 - "$W/$1_1" "$W/$1_2" "$1" <<'PY'
import json, sys
def tps(d):
    xs = [json.loads(l) for l in open(d + "/metrics.jsonl")]
    xs = sorted(j["tok_per_s"] for j in xs if j["type"] == "train" and j["step"] > 3)  # after warm-up
    return xs[len(xs) // 2]
a, b = tps(sys.argv[1]), tps(sys.argv[2])
print(f"ddp throughput {sys.argv[3]}: 1 GPU {a:.0f} tok/s, 2 GPUs {b:.0f} tok/s total ({b / 2:.0f} per GPU), "
      f"scaling efficiency {b / (2 * a) * 100:.1f}%")
PY
    }
    tput t130m 130m 2048 "${DDP_MB_130M:-8}" "${DDP_TPUT_STEPS:-15}"
    [ "${DDP_780M:-1}" = 1 ] && tput t780m 780m 2048 "${BENCH_MB:-4}" "${DDP_TPUT_STEPS:-12}"
    # Bad setups fail fast, before any GPU work.
    RANK=5 LOCAL_RANK=5 WORLD_SIZE=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=29999 BIMAMBA_DIST_TIMEOUT_S=20 timeout 60 \
      "$CLI" train --config "$W/match.json" --run-dir "$W/bad" > "$OUT/ddp_bad.log" 2>&1
    echo "ddp bad setup (LOCAL_RANK=5 on $NGPU GPUs) exits $? (expect 1): $(grep -o 'error: .*' "$OUT/ddp_bad.log" | head -1)"
    rm -rf "$W"/*/checkpoints
  fi
fi

if has study; then
  # The flagship study (docs/studies.md), resumable: each call runs for at most
  # STUDY_SECONDS, then the running stage checkpoints and the next call
  # continues. The workspace stays while the machine is warm.
  step "study: studies/paper-small.toml"
  SW="${STUDY_WS:-/tmp/study}"
  timeout -s TERM "${STUDY_SECONDS:-500}" "$CLI" study run "$ROOT/studies/paper-small.toml" --workspace "$SW" \
    --set data="$ROOT/.gpudata/shared" ${STUDY_ARGS:-} > "$OUT/study.log" 2>&1
  echo "study exit $?"; tail -25 "$OUT/study.log"
  "$CLI" study status "$ROOT/studies/paper-small.toml" --workspace "$SW" --set data="$ROOT/.gpudata/shared"
  [ -f "$SW/summary.md" ] && cat "$SW/summary.md"
  # Everything small enough to bring back (no weights; the .bmd in 15 MB parts).
  (cd "$SW" && tar czf "$OUT/study.tgz" --exclude='*.safetensors' --exclude='*.bmd' --exclude='./data' .)
  [ -f "$SW/bi-mamba.bmd" ] && (cd "$OUT" && split -b 15M -d "$SW/bi-mamba.bmd" bi-mamba.bmd.part)
  ls -la "$OUT"
fi

if has det; then
  # Deterministic mode (docs/train-config.md): 130M Bi-Mamba, bf16, the ddp
  # part's batch (16 x 512 tokens, 2 micro-batches a step), 30 steps on GPU 0.
  # (1) deterministic=true twice: identical train/val losses (the logged
  # values, compared as text) and bitwise identical final weights and AdamW
  # state; (2) stopped after 15 steps with a checkpoint, resumed to 30: the same
  # against (1); (3) the default mode twice, for comparison; (4) bench train
  # default vs --deterministic at the 130M and 780M shapes: the cost.
  step "det: deterministic training: same seed twice, stop + resume, default mode, cost"
  W=/tmp/gpu-det; rm -rf "$W"; mkdir -p "$W"; det_t0=$SECONDS
  export CUDA_VISIBLE_DEVICES=0
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" \
    --out "$W/prep" 2>&1 | tail -1
  DSTEPS="${DET_STEPS:-30}"; DHALF=$((DSTEPS / 2))
  detcfg() {  # detcfg FILE DETERMINISTIC CHECKPOINT_EVERY
    cat > "$1" <<JSON
{"data": "$W/prep", "model": {"preset": "130m", "binarize": "in_proj+out_proj"}, "steps": $DSTEPS, "seq_len": 512,
 "batch_size": 16, "grad_accum": 2, "lr": 1e-3, "final_lr": 1e-4, "warmup_steps": 10, "eval_every": 0,
 "eval_batches": 4, "checkpoint_every": $3, "log_every": 1, "device": "cuda", "seed": 5, "deterministic": $2}
JSON
  }
  detcfg "$W/det.json" true 0
  detcfg "$W/det_split.json" true "$DHALF"
  detcfg "$W/default.json" false 0
  det_train() {  # det_train NAME ARGS...: bimamba train, log in $OUT
    local name=$1 rc=0; shift
    timeout 600 "$CLI" train "$@" > "$OUT/det_$name.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { echo "det: $name FAILED (exit $rc, 124 = timeout)"; tail -5 "$OUT/det_$name.log"; }
    return $rc
  }
  det_train det1 --config "$W/det.json" --run-dir "$W/det1"
  det_train det2 --config "$W/det.json" --run-dir "$W/det2"
  BIMAMBA_TEST_HOOKS=stop_after_steps=$DHALF det_train split --config "$W/det_split.json" --run-dir "$W/split"
  det_train resumed --resume "$W/split"
  det_train default1 --config "$W/default.json" --run-dir "$W/default1"
  det_train default2 --config "$W/default.json" --run-dir "$W/default2"
  for r in det1 det2 split default1 default2; do cp "$W/$r/metrics.jsonl" "$OUT/det_metrics_$r.jsonl" 2>/dev/null; done
  grep -h "deterministic" "$W/det1/train.log" | head -1
  python3 - "$W" "$DSTEPS" <<'PY'
import json, os, struct, sys
W, steps = sys.argv[1], int(sys.argv[2])
def metrics(run):  # {step: raw text of the loss} (last line per step: a resumed run logs its steps again)
    t, v = {}, {}
    try:
        for line in open(f"{W}/{run}/metrics.jsonl"):
            j = json.loads(line, parse_float=str)
            if j["type"] == "train": t[j["step"]] = j["loss"]
            elif j["type"] == "val": v[j["step"]] = j["val_loss"]
    except OSError as e:
        print(f"  {run}: {e}")
    return t, v
def tensors(path):  # name -> (dtype, shape, bytes) of a safetensors file
    try:
        b = open(path, "rb").read()
    except OSError:
        return None
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    return {k: (e["dtype"], e["shape"], b[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]])
            for k, e in hdr.items() if k != "__metadata__"}
def weights_report(a, b, f):
    ta, tb = tensors(f"{W}/{a}/checkpoints/step_{steps:08d}/{f}"), tensors(f"{W}/{b}/checkpoints/step_{steps:08d}/{f}")
    if ta is None or tb is None: return False, "missing"
    if ta.keys() != tb.keys(): return False, "different tensor names"
    diff = [k for k in ta if ta[k] != tb[k]]
    if not diff: return True, f"{len(ta)} tensors bitwise identical"
    import torch
    worst = 0.0
    for k in diff:
        if ta[k][0] == "F32":
            x, y = (torch.frombuffer(bytearray(t[k][2]), dtype=torch.float32) for t in (ta, tb))
            worst = max(worst, (x - y).abs().max().item())
    return False, f"{len(diff)} of {len(ta)} tensors differ (max abs diff {worst:.3e})"
def compare(a, b, label):
    (ta, va), (tb, vb) = metrics(a), metrics(b)
    want = list(range(1, steps + 1))
    have = all(s in ta and s in tb for s in want)
    same = [s for s in want if s in ta and s in tb and ta[s] == tb[s]]
    rel = [abs(float(ta[s]) - float(tb[s])) / abs(float(ta[s])) for s in want if s in ta and s in tb]
    val_same = steps in va and steps in vb and va[steps] == vb[steps]
    wm, wmsg = weights_report(a, b, "model.safetensors")
    wo, omsg = weights_report(a, b, "optimizer.safetensors")
    ok = have and len(same) == steps and val_same and wm and wo
    print(f"det {label}: train losses identical at {len(same)}/{steps} steps"
          + (f" (max rel diff {max(rel):.2e}; step {steps}: {ta.get(steps)} vs {tb.get(steps)})" if len(same) < steps and rel else "")
          + f"; val loss {'identical' if val_same else 'differs: %s vs %s' % (va.get(steps), vb.get(steps))}"
          + f"; weights: {wmsg}; AdamW state + RNG: {omsg}")
    return ok
r1 = compare("det1", "det2", "deterministic, same seed twice")
r2 = compare("det1", "split", f"deterministic, stopped at step {steps // 2} and resumed, vs uninterrupted")
compare("default1", "default2", "default mode, same seed twice (for comparison; differences expected)")
(t1, _), (tb, _) = metrics("det1"), metrics("default1")
if 1 in t1 and 1 in tb:
    print(f"  step 1 loss: deterministic {t1[1]}, default {tb[1]}; step {steps}: deterministic {t1.get(steps)}, default {tb.get(steps)}")
print("det reproducibility:", "PASS" if r1 else "FAIL", "| det resume:", "PASS" if r2 else "FAIL")
PY
  # The cost: tokens/s of the default and the deterministic mode, same shapes.
  det_bench() {  # det_bench PRESET MICRO_BATCH
    local mode out
    for mode in default deterministic; do
      out="$OUT/det_bench_$1_$mode.log"
      "$CLI" bench train --preset "$1" --seq 2048 --micro-batch "$2" --binarize in_proj+out_proj --teacher off \
        --steps "${DET_BENCH_STEPS:-5}" --warmup 2 $([ $mode = deterministic ] && echo --deterministic) > "$out" 2>&1 \
        || { echo "det bench $1 $mode FAILED"; tail -3 "$out"; }
    done
    python3 - "$1" "$2" "$OUT/det_bench_$1_default.log" "$OUT/det_bench_$1_deterministic.log" <<'PY'
import sys
def row(path):  # (tokens/s, step ms, peak GiB) of the Bi-Mamba row
    for line in open(path):
        if line.startswith("Bi-Mamba"):
            f = line[40:].split()
            return (float(f[0]), float(f[1]), float(f[2])) if len(f) >= 3 and f[0] != "out" else None
d, t = row(sys.argv[3]), row(sys.argv[4])
if d and t:
    print(f"det cost {sys.argv[1]} (Bi-Mamba, seq 2048, micro-batch {sys.argv[2]}): default {d[0]:.0f} tok/s "
          f"({d[1]:.1f} ms, {d[2]:.2f} GiB), deterministic {t[0]:.0f} tok/s ({t[1]:.1f} ms, {t[2]:.2f} GiB): "
          f"{100 * (1 - t[0] / d[0]):.1f}% fewer tokens/s")
else:
    print(f"det cost {sys.argv[1]}: no result (default {d}, deterministic {t})")
PY
  }
  det_bench 130m "${DET_MB_130M:-8}"
  det_bench 780m "${BENCH_MB:-4}"
  rm -rf "$W"/*/checkpoints
  unset CUDA_VISIBLE_DEVICES
  echo "det part: $((SECONDS - det_t0)) s"
fi

if has numerics; then
  # Training numerics after kernel changes: the 130M Mamba-2 on Wikipedia
  # (train-00), NUM_STEPS (150) steps of 16 x 1024, seed 1; compare the final
  # validation loss with docs/results/gpu-train-h200/numerics_130m_metrics.jsonl.
  step "numerics: 130M Mamba-2, Wikipedia, ${NUM_STEPS:-150} steps"
  W=/tmp/gpu-num; rm -rf "$W"; mkdir -p "$W"
  "$CLI" prepare "$ROOT/.gpudata/shared/corpora/wikipedia-en-2014/train-00.txt.xz" --tokenizer "$ROOT/.gpudata/shared/llama2-tokenizer/tokenizer.model" \
    --unit line --out "$W/prep" 2>&1 | tail -1
  cat > "$W/t.json" <<JSON
{"data": "$W/prep", "model": "130m", "steps": ${NUM_STEPS:-150}, "seq_len": 1024, "batch_size": 16, "lr": 2e-3,
 "final_lr": 2e-4, "warmup_steps": 20, "eval_every": 1000, "checkpoint_every": 1000, "log_every": 50, "device": "cuda", "seed": 1}
JSON
  "$CLI" train --config "$W/t.json" --run-dir "$W/run" > "$OUT/numerics_train.log" 2>&1; echo "train exit $?"
  cp "$W/run/metrics.jsonl" "$OUT/numerics_metrics.jsonl" 2>/dev/null
  grep -E '"val"' "$W/run/metrics.jsonl" | tail -1
fi

if has telemetry; then
  # The trainer's system telemetry on a GPU (docs/run-directory.md): a tiny
  # 20-step run on CUDA; print the keys of the training lines and their values.
  step "telemetry: 20-step tiny run on cuda, metrics.jsonl GPU keys"
  W=/tmp/gpu-tel; rm -rf "$W"; mkdir -p "$W"
  "$CLI" prepare "$ROOT/.gpudata/shakespeare.txt" --unit paragraph --tokenizer "$ROOT/.gpudata/tokenizer.model" --out "$W/prep" 2>&1 | tail -1
  echo '{"data": "'$W/prep'", "model": {"preset": "tiny", "vocab_size": 32000}, "steps": 20, "seq_len": 256, "batch_size": 8, "log_every": 1, "eval_every": 0, "checkpoint_every": 0, "device": "cuda"}' > "$W/t.json"
  "$CLI" train --config "$W/t.json" --run-dir "$W/run" > "$OUT/telemetry_train.log" 2>&1; echo "train exit $?"
  cp "$W/run/metrics.jsonl" "$OUT/telemetry_metrics.jsonl" 2>/dev/null
  python3 - "$W/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in rows if r.get("type") == "train"]
print(f"telemetry: {len(train)} train lines; keys of the last: {sorted(train[-1]) if train else None}")
for k in ["rss_mb", "gpu_util", "gpu_power_w", "gpu_mem_used_mb", "gpu_mem_reserved_mb", "gpu_mem_device_mb"]:
    v = [r[k] for r in train if k in r]
    print(f"  {k}: {len(v)}/{len(train)} lines" + (f", min {min(v):.1f} max {max(v):.1f} last {v[-1]:.1f}" if v else ": MISSING"))
PY
fi

echo "total $SECONDS s"
