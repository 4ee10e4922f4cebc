#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: one PNG per tab of the real workbench,
# rendered with the offscreen platform (QWidget::grab).
#
#   scripts/screenshots.sh                 # a synthetic demo workspace built here
#   scripts/screenshots.sh --real [DIR]    # a real quickstart workspace (default /tmp/qs-shots)
#   WORKSPACE=runs scripts/screenshots.sh  # an existing workspace, as it is
#   scripts/screenshots.sh --study DIR     # a flagship-study workspace (docs/studies.md), e.g.
#                                          # docs/results/paper-small-h200 (+ BMD=bi-mamba.bmd for Chat)
#
# --real: runs `bimamba quickstart --workspace DIR` unless DIR already holds
# its runs (about 4 minutes on 2 cores, done once), then, each only if its
# output is missing: the histogram report of the three checkpoints
# (reports/report.h5), evaluation (eval/eval_results.json: perplexity on
# WikiText-2 valid, zero-shot on the repository's tiny sample task files),
# one eval per student for the Ablations table, and deployment files for the
# CPU engine (deploy/*.bmd). The two students are grouped as the quickstart's
# loss ablation (workbench.json). The workbench then generates in Compare and
# chats with both engines through the real `bimamba` before each shot.
#
# The synthetic workspace holds run folders in the layout of
# docs/run-directory.md (metrics.jsonl, status.json) with training curves
# shaped like a real run, an eval_results.json and a histogram report in the
# docs/report-format.md layout (written with h5import), so every tab has
# something to show: its numbers are not measurements.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gui}"
APP="$BUILD_DIR/app/bimamba-workbench"
CLI="${BIMAMBA_CLI:-$BUILD_DIR/app/bimamba}"
OUT="${OUT:-$ROOT/docs/screenshots}"
SHARED="${SHARED:-$ROOT/../shared/data}"
[ -x "$APP" ] || { echo "build bimamba-workbench first ($APP)" >&2; exit 1; }
REAL=""
STUDY=""
if [ "${1:-}" = "--real" ]; then
  REAL="${2:-/tmp/qs-shots}"
elif [ "${1:-}" = "--study" ] && [ -n "${2:-}" ]; then
  STUDY="$(cd "$2" && pwd)"
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--real [DIR] | --study DIR]" >&2; exit 2
fi
SETUP_ARGS=()

if [ -n "$STUDY" ]; then
  # The study's own results: its runs, the students' group, the Figure 2
  # report, the 12-model evaluation, its generations; Chat on the exported
  # student when BMD names it (the workspace in docs/results holds no weights).
  WORKSPACE="$STUDY"
  SETUP="$(mktemp)"
  EXPORTS="$(mktemp -d)"  # the Reports tab's figures of the study's AR-KD student, previewed
  CHAT=""
  [ -n "${BMD:-}" ] && CHAT=",\"chat\": {\"model\": \"$BMD\", \"prompt\": \"The history of the Roman Empire\"}"
  cat > "$SETUP" <<JSON
{
  "runs": ["teacher", "bi-mamba", "bi-mamba-ce", "bi-mamba-kl", "bi-mamba-mix", "bi-mamba-in-proj"],
  "ablation": {"group": "students"},
  "weights": {"report": "$STUDY/report.h5", "module": "in_proj"},
  "evaluate": {"results": ["$STUDY/eval/perplexity.json", "$STUDY/eval/zero-shot.json"]},
  "compare": {"generations": "$STUDY/eval/generations.json"},
  "reports": {"run": "bi-mamba", "export": true, "out": "$EXPORTS", "preview": "loss.png"}$CHAT
}
JSON
  SETUP_ARGS=(--screenshot-setup "$SETUP" --cli "$CLI")
fi

if [ -n "$REAL" ]; then
  [ -x "$CLI" ] || { echo "build bimamba first ($CLI)" >&2; exit 1; }
  WORKSPACE="$REAL"
  R="$WORKSPACE/runs"
  if [ ! -f "$WORKSPACE/report.json" ]; then
    "$CLI" quickstart --workspace "$WORKSPACE"
  fi
  ckpt() { ls -d "$1"/checkpoints/step_* | sort | tail -1; }
  mkdir -p "$WORKSPACE/reports" "$WORKSPACE/eval" "$WORKSPACE/deploy"
  # the two students are the quickstart's loss ablation (CE vs AR-KD, both fully binarized)
  printf '{"group":"quickstart-loss","axes":{"loss":"soft_ce"}}\n' > "$R/student_kd/workbench.json"
  printf '{"group":"quickstart-loss","axes":{"loss":"ce"}}\n' > "$R/student_ce/workbench.json"
  [ -f "$WORKSPACE/reports/report.h5" ] || "$CLI" report --run "$R/student_kd" \
      --hist "mamba2=$R/teacher,bi-mamba=$R/student_kd,bi-mamba-ce=$R/student_ce" --out "$WORKSPACE/reports/report.h5"
  WIKI="$SHARED/wikitext-2/valid.txt"
  T="$ROOT/tests/data/eval"
  TASKS="wikitext2=$WIKI,boolq=$T/boolq.jsonl,piqa=$T/piqa.jsonl,hellaswag=$T/hellaswag.jsonl,winogrande=$T/winogrande.jsonl,arc_easy=$T/arc_easy.jsonl,openbookqa=$T/openbookqa.jsonl"
  [ -f "$WIKI" ] || TASKS="${TASKS#*,}"
  EVAL_OPTS=(--tasks "$TASKS" --window 256 --max-windows 64 --quiet)
  [ -f "$WORKSPACE/eval/eval_results.json" ] || "$CLI" eval \
      --model "Mamba-2 teacher=$R/teacher,Bi-Mamba AR-KD=$R/student_kd,Bi-Mamba CE=$R/student_ce" \
      "${EVAL_OPTS[@]}" --out "$WORKSPACE/eval/eval_results.json"
  for s in student_kd student_ce; do
    [ -f "$R/$s/eval_results.json" ] || "$CLI" eval --model "$s=$R/$s" "${EVAL_OPTS[@]}" --out "$R/$s/eval_results.json"
  done
  TOK="$WORKSPACE/data/fortunes/tokenizer.model"
  [ -f "$WORKSPACE/deploy/bi-mamba.bmd" ] || "$CLI" export --model "$(ckpt "$R/student_kd")" --tokenizer "$TOK" --out "$WORKSPACE/deploy/bi-mamba.bmd"
  [ -f "$WORKSPACE/deploy/mamba2-fp16.bmd" ] || "$CLI" export --model "$(ckpt "$R/teacher")" --tokenizer "$TOK" --out "$WORKSPACE/deploy/mamba2-fp16.bmd"
  SETUP="$(mktemp)"
  cat > "$SETUP" <<JSON
{
  "runs": ["teacher", "student_kd", "student_ce"],
  "ablation": {"name": "quickstart-loss-2", "losses": ["ce", "soft_ce", "kl", "mix"],
               "binarize": ["in_proj+out_proj"], "group": "quickstart-loss",
               "base_config": $(cat "$R/student_kd/train_config.json")},
  "weights": {"report": "$WORKSPACE/reports/report.h5", "module": "in_proj"},
  "compare": {"models": ["Mamba-2 teacher=$R/teacher", "Bi-Mamba AR-KD=$R/student_kd", "Bi-Mamba CE=$R/student_ce"],
              "prompt": "Q: What is the meaning of life?\\nA:", "max_tokens": 48},
  "chat": {"model": "$WORKSPACE/deploy/bi-mamba.bmd", "baseline": "$WORKSPACE/deploy/mamba2-fp16.bmd",
           "prompt": "Tell me a fortune."},
  "reports": {"run": "student_kd", "export": true, "out": "$WORKSPACE/exports"}
}
JSON
  SETUP_ARGS=(--screenshot-setup "$SETUP" --cli "$CLI")
fi

if [ -z "${WORKSPACE:-}" ]; then
  WORKSPACE="$(mktemp -d)/workspace"
  trap 'rm -rf "$(dirname "$WORKSPACE")"' EXIT
  mkdir -p "$WORKSPACE/runs" "$WORKSPACE/eval" "$WORKSPACE/reports"
  # name group preset binarize loss steps final-loss state seed
  while read -r name group size bin loss steps floor state seed; do
    d="$WORKSPACE/runs/$name"; mkdir -p "$d/checkpoints"
    printf '{"data":"%s/data/fortunes","model":{"preset":"%s","binarize":"%s"},"loss":"%s","steps":%s,"seed":%s%s}\n' \
      "$WORKSPACE" "$size" "$bin" "$loss" "$steps" "$seed" \
      "$([ "$loss" = ce ] || echo ',"teacher":"runs/teacher/checkpoints/step_00002000"')" > "$d/workbench_config.json"
    cp "$d/workbench_config.json" "$d/train_config.json"
    axes=""; [ "$group" != - ] && axes="\"loss\":\"$loss\""
    printf '{"name":"%s","group":"%s","preset":"quickstart","axes":{%s}}\n' "$name" "${group#-}" "$axes" > "$d/workbench.json"
    upto=$steps; [ "$state" = running ] && upto=$((steps * 3 / 5))
    awk -v n="$upto" -v fl="$floor" -v seed="$seed" 'BEGIN{srand(7+seed);
      for(s=1;s<=n;s++){ l=fl+7.5*exp(-s/260)+0.9*exp(-s/40)+0.06*(rand()-0.5);
        lr=(s<100)?1e-3*s/100:1e-4+0.9e-3*0.5*(1+cos(3.14159*(s-100)/(n-100)));
        printf "{\"type\":\"train\",\"step\":%d,\"tokens\":%d,\"loss\":%.5f,\"lr\":%.6g,\"grad_norm\":%.4f,\"tok_per_s\":%.1f,\"mem_mb\":%.1f,\"time\":%.2f}\n", s, s*4096, l, lr, 0.4+2*exp(-s/150)+0.1*rand(), 5200+300*(rand()-0.5), 812+4*rand(), s*0.79;
        if(s%100==0){v=l+0.12; printf "{\"type\":\"val\",\"step\":%d,\"tokens\":%d,\"val_loss\":%.5f,\"val_ppl\":%.4f,\"time\":%.2f}\n", s, s*4096, v, exp(v), s*0.79}}}' > "$d/metrics.jsonl"
    ended='null'; [ "$state" != running ] && ended='"2026-11-23T07:40:00Z"'
    pid=1; [ "$state" = running ] && pid=$$
    printf '{"state":"%s","pid":%s,"step":%s,"total_steps":%s,"started":"2026-11-23T06:10:00Z","ended":%s,"message":""}\n' \
      "$state" "$pid" "$upto" "$steps" "$ended" > "$d/status.json"
  done <<'RUNS'
teacher - small none ce 2000 2.55 finished 0
bi-ce loss-ablation small in_proj+out_proj ce 2000 3.05 finished 0
bi-arkd loss-ablation small in_proj+out_proj soft_ce 2000 2.85 finished 0
bi-kl loss-ablation small in_proj+out_proj kl 2000 2.93 finished 0
bi-mix loss-ablation small in_proj+out_proj mix 2000 2.90 running 0
RUNS
  # evaluation results in the EvalTable JSON layout (core/eval/EvalTable.h)
  mc() { printf '{"kind":"mc","acc":%s,"acc_norm":%s,"headline":"%s"}' "$1" "$2" "$3"; }
  row() { printf '{"label":"%s","path":"runs/%s","results":{"wikitext2":{"kind":"ppl","ppl":%s},"ptb":{"kind":"ppl","ppl":%s},"boolq":%s,"piqa":%s,"hellaswag":%s,"winogrande":%s,"arc_easy":%s,"arc_challenge":%s,"openbookqa":%s}}' \
      "$1" "$2" "$3" "$4" "$(mc "$5" 0 acc)" "$(mc "$6" 0 acc)" "$(mc 0 "$7" acc_norm)" "$(mc "$8" 0 acc)" "$(mc "$9" 0 acc)" "$(mc 0 "${10}" acc_norm)" "$(mc 0 "${11}" acc_norm)"; }
  printf '{"models":[%s,%s,%s]}\n' \
    "$(row Mamba-2 teacher 18.2 31.5 0.61 0.64 0.34 0.52 0.47 0.24 0.29)" \
    "$(row Bi-Mamba-AR-KD bi-arkd 24.9 46.1 0.60 0.59 0.29 0.51 0.40 0.22 0.27)" \
    "$(row Bi-Mamba-CE bi-ce 29.3 55.0 0.57 0.57 0.28 0.50 0.37 0.21 0.26)" > "$WORKSPACE/eval/eval_results.json"
  # each loss-ablation run evaluated: feeds the Table-5 layout of the Ablations tab
  printf '{"models":[%s]}\n' "$(row bi-arkd bi-arkd 24.9 46.1 0.60 0.59 0.29 0.51 0.40 0.22 0.27)" > "$WORKSPACE/runs/bi-arkd/eval_results.json"
  printf '{"models":[%s]}\n' "$(row bi-ce bi-ce 29.3 55.0 0.57 0.57 0.28 0.50 0.37 0.21 0.26)" > "$WORKSPACE/runs/bi-ce/eval_results.json"
  printf '{"models":[%s]}\n' "$(row bi-kl bi-kl 27.8 52.3 0.58 0.58 0.28 0.50 0.38 0.21 0.26)" > "$WORKSPACE/runs/bi-kl/eval_results.json"
  # histograms (report layout) with h5import: full precision, Bi-Mamba, PTQ
  if command -v h5import >/dev/null; then
    H="$WORKSPACE/reports/report.h5"
    tmp="$(dirname "$WORKSPACE")/h5"; mkdir -p "$tmp"
    for set in mamba2_fp bi_mamba billm; do
      args=()   # h5import takes at most 30 inputs per call: one call per set
      for layer in 0 23 47; do
        for mod in in_proj out_proj; do
          f="$tmp/$set-$layer-$mod"
          awk -v set="$set" -v layer="$layer" -v mod="$mod" 'BEGIN{
            bins=60; sd=(mod=="in_proj")?0.021:0.016; sd*=1+layer/200; lo=-5*sd; hi=5*sd;
            for(i=0;i<=bins;i++) printf "%.8g\n", lo+(hi-lo)*i/bins > "/dev/stderr";
            for(i=0;i<bins;i++){x=lo+(hi-lo)*(i+0.5)/bins;
              if(set=="mamba2_fp") c=exp(-x*x/(2*sd*sd));
              else if(set=="bi_mamba") c=exp(-x*x/(2*(1.05*sd)^2))*(1+0.25*exp(-(x-0.8*sd)^2/(0.1*sd*sd))+0.25*exp(-(x+0.8*sd)^2/(0.1*sd*sd)));
              else c=exp(-(x-0.9*sd)^2/(0.08*sd*sd))+exp(-(x+0.9*sd)^2/(0.08*sd*sd))+0.4*exp(-x*x/(0.3*sd*sd));
              printf "%d\n", int(200000*c)}}' > "$f.counts" 2> "$f.edges"
          printf 'PATH histograms/%s/layer_%s/%s/counts\nINPUT-CLASS TEXTIN\nINPUT-SIZE 64\nOUTPUT-CLASS IN\nOUTPUT-SIZE 64\nRANK 1\nDIMENSION-SIZES 60\n' "$set" "$layer" "$mod" > "$f.counts.conf"
          printf 'PATH histograms/%s/layer_%s/%s/edges\nINPUT-CLASS TEXTFP\nINPUT-SIZE 64\nOUTPUT-CLASS FP\nOUTPUT-SIZE 64\nRANK 1\nDIMENSION-SIZES 61\n' "$set" "$layer" "$mod" > "$f.edges.conf"
          args+=("$f.counts" -c "$f.counts.conf" "$f.edges" -c "$f.edges.conf")
        done
      done
      h5import "${args[@]}" -o "$H" >/dev/null
    done
  fi
fi

mkdir -p "$OUT"
export QT_QPA_PLATFORM=offscreen
HOME_TMP="$(mktemp -d)"   # fresh QSettings, so the shots do not depend on the user's
XDG_CONFIG_HOME="$HOME_TMP" "$APP" --workspace "$WORKSPACE" --screenshots "$OUT" "${SETUP_ARGS[@]}"
rm -rf "$HOME_TMP" ${SETUP:+"$SETUP"} ${EXPORTS:+"$EXPORTS"}
