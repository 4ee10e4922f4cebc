#!/usr/bin/env bash
# `bimamba remote` on a real one-node Slurm cluster (tests/remote/slurm_fixture.sh)
# reached over the fixture's sshd (tests/remote/ssh_fixture.sh): a tiny CPU
# run submitted with sbatch (srun starts bimamba train), metrics arriving,
# scancel --signal=TERM (stopped, with a checkpoint), resume as a new job to
# the end, fetch; a job that waits shows PENDING with Slurm's reason and is
# cancelled; a job that fails shows Slurm's state and reason.
set -u
CLI=${BIMAMBA_CLI:?BIMAMBA_CLI must name the built bimamba}
WS=${BIMAMBA_TEST_SSH_WS:?run me through slurm_fixture.sh and ssh_fixture.sh}
T=$BIMAMBA_TEST_SSH_DIR
[ -n "${SLURM_CONF:-}" ] || { echo "SKIP: no Slurm fixture"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
bm() { "$CLI" "$@"; }
cd "$WS" || exit 1

bm hosts check cluster > check.out 2>&1 || { cat check.out; fail "hosts check cluster"; }
grep -q "^sbatch: " check.out || { cat check.out; fail "no sbatch found over ssh"; }

for i in $(seq 0 399); do echo "The quick brown fox $((i % 17)) jumps over the lazy dog number $((i % 29))."; done > corpus.txt
bm prepare corpus.txt --out "$WS/data" --unit line --vocab-size 300 --quiet || fail "prepare"
cat > tiny.json <<JSON
{"data": "$WS/data", "model": {"preset": "tiny", "binarize": "in_proj", "vocab_size": 512},
 "steps": 3000, "seq_len": 32, "batch_size": 2, "warmup_steps": 2, "eval_every": 100, "eval_batches": 1,
 "checkpoint_every": 0, "device": "cpu", "threads": 1, "lr": 0.001}
JSON

echo "== a job that waits: PENDING with its reason, then cancelled"
bm remote launch --host later --config tiny.json --name waiting > l.out 2>&1 || { cat l.out; fail "launch later"; }
bm remote status waiting > s.out 2>&1
grep -q "waiting: pending.*PENDING (BeginTime)" s.out || { cat s.out; fail "no PENDING (BeginTime)"; }
bm remote stop waiting || fail "stop a pending job"
for i in $(seq 40); do bm remote status waiting > s.out 2>&1; grep -q "waiting: stopped" s.out && break; sleep 0.5; done
grep -q "waiting: stopped" s.out || { cat s.out; fail "a cancelled pending job is not stopped"; }

echo "== a job that fails: Slurm's state and reason"
bm remote launch --host broken --config tiny.json --name broken --follow --interval 0.5 > b.out 2>&1
[ $? -eq 3 ] || { cat b.out; fail "following a failing job did not exit 3"; }
grep -q "broken: failed.*Slurm job [0-9]*: FAILED (NonZeroExitCode)" b.out || { cat b.out; fail "no FAILED (NonZeroExitCode)"; }

echo "== a run over ssh + sbatch"
bm remote launch --host cluster --config tiny.json --name "slurm run" --sync-data > launch.out 2>&1 || { cat launch.out; fail "launch"; }
cat launch.out
grep -q "Slurm job [0-9]" launch.out || fail "no job id"
RUN=runs/slurm_run
RDIR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["remote_dir"])' "$RUN/remote.json")
grep -q '^srun ' "$RDIR/job.sbatch" || fail "no srun line in job.sbatch"
for i in $(seq 240); do
  bm remote status slurm_run > s.out 2>&1
  [ -f "$RUN/metrics.jsonl" ] && [ "$(grep -c '"type":"train"' "$RUN/metrics.jsonl")" -ge 3 ] && break
  sleep 0.5
done
grep -q "slurm_run: running" s.out || { cat s.out; fail "not running"; }
bm remote stop slurm_run || fail "scancel --signal=TERM"
bm remote status slurm_run --follow --interval 0.5 > f.out 2>&1 || { cat f.out; fail "follow after stop"; }
tail -n 1 f.out | grep -q "slurm_run: stopped" || { cat f.out; fail "not stopped"; }
[ -s "$RDIR/checkpoints/latest" ] || fail "no checkpoint after scancel --signal=TERM"
bm remote resume slurm_run --follow --interval 0.5 > r.out 2>&1 || { cat r.out; fail "resume"; }
tail -n 1 r.out | grep -q "slurm_run: finished, step 3000/3000" || { cat r.out; fail "the resumed job did not finish"; }
cmp "$RUN/metrics.jsonl" "$RDIR/metrics.jsonl" || fail "the mirrored metrics.jsonl differs"
bm remote fetch slurm_run || fail "fetch"
[ -s "$RUN/checkpoints/latest" ] || fail "no checkpoints after fetch"
echo "PASS"
