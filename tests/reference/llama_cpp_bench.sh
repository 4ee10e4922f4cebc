#!/usr/bin/env bash
# The CPU engine against llama.cpp on the same random-weight Mamba-2 (issue #16).
#
#  1. downloads the llama-cpp-python 0.3.36 sdist from PyPI and builds its
#     vendored llama.cpp (Release, -march=native, CPU only; llama-bench and
#     llama-quantize only) into a scratch folder outside the repository;
#  2. makes a random-weight transformers Mamba2ForCausalLM of the 780M (or
#     2.7B) shape in float16 (tests/reference/llama_cpp_bench_model.py, in a
#     scratch venv), converts it with llama.cpp's convert_hf_to_gguf.py and
#     quantizes it (f16, Q8_0, Q4_0, Q2_K, TQ2_0, TQ1_0);
#  3. exports the same weights with `bimamba export`: fp16, and 1-bit (sign of
#     the same weights with per-column scale and bias; Bi-Mamba's layout) with
#     an fp16 head ("binary") and with an int8 head ("binary-q8h", --head q8);
#  4. alternates `llama-bench` with `bimamba bench cpu` for N rounds (every
#     engine/format once per round, the order reversed every other round) and
#     prints one table: medians over the rounds and [min-max] ranges, with
#     ratios against llama.cpp f16 and llama.cpp's fastest low-bit format.
#
# Measured alike: decode = `-n TOKENS` of llama-bench (tg: TOKENS single-token
# decodes) against `bench cpu --tokens TOKENS` (greedy decode, TOKENS single
# steps); prompt = `-p PROMPT` of llama-bench (pp: one batch of PROMPT tokens)
# against `bench cpu --prompt PROMPT --prefill-block PROMPT` (one block);
# each run repeats both REPS times and gives its median (llama-bench's
# samples_ts, bench cpu's reps); the table takes the median of those over
# the rounds.
#
# usage: tests/reference/llama_cpp_bench.sh [--shape 780m|2.7b] [--rounds N] [--threads T]
#            [--tokens N] [--prompt N] [--reps N] [--scratch DIR] [--bimamba PATH]
#            [--formats "f16 Q8_0 Q4_0 Q2_K TQ2_0 TQ1_0"] [--ours "binary binary-q8h f16"]
#            (an entry NAME@KERNEL runs file NAME with `--binary-kernel KERNEL`: binary-q8h@i8lut)
#            [--prepare-only]
# Defaults: 780m, 6 rounds, 2 threads, 32 tokens, prompt 32, 5 reps,
# scratch ../scratch-llama beside the checkout, bimamba from build/app/.
# --prepare-only stops after building and making the files (steps 1-3).
# Offline hosts (the GPU machine): put the llama.cpp sources at
# SCRATCH/llama_cpp_python-0.3.36/vendor/llama.cpp beforehand; where python3
# itself has torch, transformers, safetensors and sentencepiece, no venv is made.
# LLAMA_BUILD_JOBS (default 2) sets the llama.cpp build's parallelism.
# Nothing it downloads or builds lands in the repository.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHAPE=780m ROUNDS=6 THREADS=2 TOKENS=32 PROMPT=32 REPS=5
SCRATCH=$(dirname "$ROOT")/scratch-llama
BIMAMBA=$ROOT/build/app/bimamba
FORMATS="f16 Q8_0 Q4_0 Q2_K TQ2_0 TQ1_0"
OURS="binary binary-q8h f16"
TOKENIZER=${BIMAMBA_TOKENIZER:-$ROOT/../shared/data/llama2-tokenizer/tokenizer.model}
SDIST_VERSION=0.3.36
PREPARE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) SHAPE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --tokens) TOKENS=$2; shift 2 ;;
    --prompt) PROMPT=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --scratch) SCRATCH=$2; shift 2 ;;
    --bimamba) BIMAMBA=$2; shift 2 ;;
    --formats) FORMATS=$2; shift 2 ;;
    --ours) OURS=$2; shift 2 ;;
    --tokenizer) TOKENIZER=$2; shift 2 ;;
    --prepare-only) PREPARE_ONLY=1; shift ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$SHAPE" in 780m|2.7b) ;; *) echo "--shape 780m or 2.7b" >&2; exit 2 ;; esac
case "$SCRATCH" in "$ROOT"|"$ROOT"/*) echo "--scratch must be outside the repository" >&2; exit 2 ;; esac
[ -x "$BIMAMBA" ] || { echo "no bimamba at $BIMAMBA (build it, or --bimamba PATH)" >&2; exit 2; }
[ -f "$TOKENIZER" ] || { echo "no tokenizer at $TOKENIZER (a 32000-piece SentencePiece model; --tokenizer)" >&2; exit 2; }
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
log() { echo "[llama_cpp_bench] $*" >&2; }

# 1. llama.cpp from the llama-cpp-python sdist.
SRC=$SCRATCH/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  log "downloading llama-cpp-python $SDIST_VERSION (sdist) into $SCRATCH"
  python3 -m pip download --no-binary :all: --no-deps "llama-cpp-python==$SDIST_VERSION" -d "$SCRATCH"
  tar xzf "$SCRATCH/llama_cpp_python-$SDIST_VERSION.tar.gz" -C "$SCRATCH"
fi
LB=$SCRATCH/build/bin
if [ ! -x "$LB/llama-bench" ] || [ ! -x "$LB/llama-quantize" ]; then
  log "building llama.cpp (Release, native, CPU only) in $SCRATCH/build"
  nice -n 15 cmake -S "$SRC" -B "$SCRATCH/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_SUBPROCESS=OFF >/dev/null
  nice -n 15 cmake --build "$SCRATCH/build" -j "${LLAMA_BUILD_JOBS:-2}" --target llama-bench llama-quantize
fi
LLAMA_COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "from llama-cpp-python $SDIST_VERSION")

# 2. Scratch venv: transformers, safetensors, sentencepiece and llama.cpp's gguf-py.
# torch comes from the checkout's .venv (scripts/setup.sh installs it there) through a .pth
# file, or from the scratch venv itself if it has one.
VENV=$SCRATCH/venv
if python3 -c "import transformers, safetensors, sentencepiece, torch, numpy, yaml" 2>/dev/null; then
  VENV=""  # python3 has them all (convert_hf_to_gguf.py puts its own gguf-py on sys.path)
elif [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import transformers, gguf, sentencepiece, torch" 2>/dev/null; then
  log "making the scratch venv $VENV"
  python3 -m venv "$VENV"
  SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    TORCH_SITE=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages 2>/dev/null | head -1)
    [ -n "$TORCH_SITE" ] && [ -d "$TORCH_SITE/torch" ] || { echo "no torch: run scripts/setup.sh (it puts one in .venv)" >&2; exit 2; }
    echo "$TORCH_SITE" > "$SITE/zz-checkout-torch.pth"
  fi
  "$VENV/bin/pip" install -q transformers safetensors sentencepiece "$SRC/gguf-py"
fi
PY=python3
[ -n "$VENV" ] && PY=$VENV/bin/python

# 3. The model, its GGUF files and our deployment files.
M=$SCRATCH/models/$SHAPE
if [ ! -f "$M/binary/model.safetensors" ]; then
  log "making the random-weight Mamba2ForCausalLM ($SHAPE) in $M"
  "$PY" "$ROOT/tests/reference/llama_cpp_bench_model.py" "$M" --shape "$SHAPE" --tokenizer "$TOKENIZER"
fi
if [ ! -f "$M/mamba2-f16.gguf" ]; then
  log "converting with convert_hf_to_gguf.py"
  nice -n 15 "$PY" "$SRC/convert_hf_to_gguf.py" "$M/hf" --outtype f16 --outfile "$M/mamba2-f16.gguf" >"$M/convert.log" 2>&1 \
    || { tail -20 "$M/convert.log" >&2; exit 1; }
fi
for f in $FORMATS; do
  g=$M/mamba2-$f.gguf
  [ -f "$g" ] && continue
  log "llama-quantize $f"
  nice -n 15 "$LB/llama-quantize" "$M/mamba2-f16.gguf" "$g" "$f" "$(nproc)" >"$M/quantize-$f.log" 2>&1 \
    || { tail -20 "$M/quantize-$f.log" >&2; exit 1; }
done
for o in $OURS; do
  o=${o%@*}  # NAME@KERNEL: the file NAME, benched with --binary-kernel KERNEL
  b=$M/ours-$o.bmd
  [ -f "$b" ] && continue
  src=$M/hf head=f16
  case "$o" in binary*) src=$M/binary ;; esac
  case "$o" in *-q8h) head=q8 ;; esac
  log "bimamba export $o"
  "$BIMAMBA" export --model "$src" --out "$b" --tokenizer "$TOKENIZER" --head "$head" >"$M/export-$o.log"
done

if [ "$PREPARE_ONLY" = 1 ]; then log "prepared $M"; exit 0; fi

# 4. Alternated rounds: every engine/format once per round, the order reversed every other round.
OUT=$M/results-$(date -u +%Y%m%dT%H%M%SZ)-t$THREADS
mkdir -p "$OUT"
ENTRIES=()
for f in $FORMATS; do ENTRIES+=("llama:$f"); done
for o in $OURS; do ENTRIES+=("ours:$o"); done
# Interleave: llama f16, ours binary, llama Q8_0, ours f16, ... so neighbours differ.
ORDER=()
n_l=$(echo $FORMATS | wc -w); n_o=$(echo $OURS | wc -w)
for ((i = 0; i < n_l || i < n_o; i++)); do
  [ $i -lt $n_l ] && ORDER+=("${ENTRIES[$i]}")
  [ $i -lt $n_o ] && ORDER+=("${ENTRIES[$((n_l + i))]}")
done
log "$ROUNDS rounds of ${ORDER[*]} ($THREADS threads, tg$TOKENS, pp$PROMPT, $REPS reps each); results in $OUT"
{
  echo "date_utc=$(date -u +%FT%TZ)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512[a-z_0-9]*\|avx2\|f16c' | sort -u | tr '\n' ' ')"
  echo "cores=$(nproc) threads=$THREADS shape=$SHAPE llama_cpp=$LLAMA_COMMIT bimamba=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
} >"$OUT/machine.txt"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then seq=("${ORDER[@]}"); else seq=(); for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do seq+=("${ORDER[$i]}"); done; fi
  for e in "${seq[@]}"; do
    kind=${e%%:*} fmt=${e#*:}
    echo "round $r: $e (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if [ "$kind" = llama ]; then
      "$LB/llama-bench" -m "$M/mamba2-$fmt.gguf" -p "$PROMPT" -n "$TOKENS" -t "$THREADS" -r "$REPS" -o json \
        >"$OUT/r$r-llama-$fmt.json" 2>"$OUT/r$r-llama-$fmt.err"
    else
      kernel=()
      [[ "$fmt" == *@* ]] && kernel=(--binary-kernel "${fmt#*@}")
      "$BIMAMBA" bench cpu --shape none --model "$M/ours-${fmt%@*}.bmd" --threads "$THREADS" --tokens "$TOKENS" \
        --prompt "$PROMPT" --prefill-block "$PROMPT" --reps "$REPS" --state f16 --error-tokens 0 --bandwidth-mb 256 \
        "${kernel[@]}" --json >"$OUT/r$r-ours-$fmt.json" 2>"$OUT/r$r-ours-$fmt.err"
    fi
  done
done

# 5. The table.
python3 - "$OUT" "$M" "$FORMATS" "$OURS" "$ROUNDS" <<'EOF'
import glob, json, os, statistics as st, sys
out, m, formats, ours, rounds = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
def med(v): return st.median(v)
rows = {}
share = {}  # round -> bench cpu's core_share of each of our runs (about 0.5: threads sharing a core)
for f in formats:
    dec, pp = [], []
    for r in range(1, rounds + 1):
        for t in json.load(open(f"{out}/r{r}-llama-{f}.json")):
            v = med(t.get("samples_ts") or [t["avg_ts"]])
            (dec if t["n_gen"] > 0 else pp).append(v)
    rows[("llama.cpp", f)] = (os.path.getsize(f"{m}/mamba2-{f}.gguf"), dec, pp)
for o in ours:
    dec, pp = [], []
    for r in range(1, rounds + 1):
        for line in open(f"{out}/r{r}-ours-{o}.json"):
            e = json.loads(line)
            if e.get("event") == "stats":
                dec.append(e["tok_per_s"]); pp.append(e["prefill_tok_per_s"])
            elif e.get("event") == "machine" and "core_share" in e:
                share.setdefault(r, []).append(e["core_share"])
    rows[("ours", o)] = (os.path.getsize(f"{m}/ours-{o.split('@')[0]}.bmd"), dec, pp)
f16 = med(rows[("llama.cpp", "f16")][1]) if ("llama.cpp", "f16") in rows else None
low = [f for f in formats if f != "f16"]
fast = max(low, key=lambda f: med(rows[("llama.cpp", f)][1])) if low else None
fastv = med(rows[("llama.cpp", fast)][1]) if fast else None
mach = open(f"{out}/machine.txt").read().split("\n")
print("\n" + "; ".join(x for x in mach if x))
print(f"medians over {rounds} alternated rounds [min-max]; ratios of decode medians")
hdr = "| engine / format | file MB | decode tok/s | prompt tok/s | decode x llama.cpp f16 |"
if fast: hdr += f" decode x llama.cpp {fast} (its fastest low-bit) |"
print(hdr); print("|---|---:|---:|---:|---:|" + ("---:|" if fast else ""))
for (eng, f), (size, dec, pp) in rows.items():
    d, p = med(dec), med(pp)
    name = f"{eng} {f}" + (" (fastest low-bit)" if f == fast and eng == "llama.cpp" else "")
    line = f"| {name} | {size/1e6:.0f} | {d:.1f} [{min(dec):.1f}-{max(dec):.1f}] | {p:.0f} [{min(pp):.0f}-{max(pp):.0f}] |"
    line += f" {d/f16:.2f}x |" if f16 else " - |"
    if fast: line += f" {d/fastv:.2f}x |"
    print(line)
if share:
    print("compute per thread with all threads at once, over one thread alone (bench cpu's core_share; "
          "below 0.8 the threads shared cores in that round): "
          + ", ".join(f"round {r} {min(v):.2f}" for r, v in sorted(share.items())))
EOF
