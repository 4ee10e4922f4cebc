#!/usr/bin/env bash
# `bimamba remote` end to end against the fixture's sshd (run through
# tests/remote/ssh_fixture.sh): hosts check (and an unknown host key
# refused), a tiny CPU training run launched with --sync-data, metrics
# arriving in the mirror, the server going away mid-run (unreachable) and
# coming back (re-attached), stop, resume to the end, fetch.
set -u
CLI=${BIMAMBA_CLI:?BIMAMBA_CLI must name the built bimamba}
WS=${BIMAMBA_TEST_SSH_WS:?run me through tests/remote/ssh_fixture.sh}
T=$BIMAMBA_TEST_SSH_DIR
fail() { echo "FAIL: $*"; exit 1; }
bm() { "$CLI" "$@"; }
cd "$WS" || exit 1

echo "== hosts"
bm hosts list | grep -q '^loop .*ssh .*127.0.0.1' || fail "hosts list does not show loop"
bm hosts check loop > check.out 2>&1 || { cat check.out; fail "hosts check loop"; }
grep -q '^ok$' check.out || fail "hosts check loop did not say ok"
if bm hosts check stranger > stranger.out 2>&1; then fail "an unknown host key was accepted"; fi
grep -q "host key is not known" stranger.out || { cat stranger.out; fail "no clear error for an unknown host key"; }
[ ! -s "$T/empty_known_hosts" ] || fail "a host key was written to known_hosts"

echo "== data and config (here)"
for i in $(seq 0 399); do echo "The quick brown fox $((i % 17)) jumps over the lazy dog number $((i % 29))."; done > corpus.txt
bm prepare corpus.txt --out "$WS/data" --unit line --vocab-size 300 --quiet || fail "prepare"
cat > tiny.json <<JSON
{"data": "$WS/data", "model": {"preset": "tiny", "binarize": "in_proj", "vocab_size": 512},
 "steps": 3000, "seq_len": 32, "batch_size": 2, "warmup_steps": 2, "eval_every": 100, "eval_batches": 1,
 "checkpoint_every": 0, "device": "cpu", "threads": 1, "lr": 0.001}
JSON

echo "== launch"
bm remote launch --host loop --config tiny.json --name "tiny run" --sync-data > launch.out 2>&1 || { cat launch.out; fail "launch"; }
cat launch.out
RUN=runs/tiny_run
[ -f "$RUN/remote.json" ] || fail "no mirror with remote.json"
RDIR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["remote_dir"])' "$RUN/remote.json")
case "$RDIR" in *"remote dir/it's/runs/tiny_run") ;; *) fail "remote dir is $RDIR";; esac
SYNCED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"])' "$RDIR/workbench_config.json")
case "$SYNCED" in "$T/remote dir/it's/data/data-"????????) ;; *) fail "config does not point at the synced data ($SYNCED)";; esac
diff -r "$WS/data" "$SYNCED" || fail "data not synced"

rows() { [ -f "$RUN/metrics.jsonl" ] && grep -c '"type":"train"' "$RUN/metrics.jsonl" || echo 0; }
wait_rows() {  # at least $1 train rows in the mirror, polling with `remote status`
  for i in $(seq 240); do
    bm remote status tiny_run > status.out 2>&1
    [ "$(rows)" -ge "$1" ] && return 0
    sleep 0.5
  done
  cat status.out; fail "metrics did not reach $1 rows"
}
echo "== metrics arrive"
wait_rows 3
grep -q "tiny_run: running" status.out || { cat status.out; fail "not running"; }

echo "== the connection goes away mid-run"
kill "$(cat "$BIMAMBA_TEST_SSHD_PIDFILE")"
for s in "$BIMAMBA_SSH_CONTROL_DIR"/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1; done
sleep 0.5
bm remote status tiny_run > status.out 2>&1; rc=$?
[ $rc -eq 2 ] || { cat status.out; fail "remote status exit code $rc while unreachable (want 2)"; }
grep -q "unreachable since" status.out || { cat status.out; fail "no 'unreachable since'"; }
before=$(rows)
sleep 2
$BIMAMBA_TEST_SSHD_START || fail "sshd did not start again"
sleep 0.5
bm remote status tiny_run > status.out 2>&1 || { cat status.out; fail "status after the server came back"; }
grep -q "tiny_run: running" status.out || { cat status.out; fail "not re-attached"; }
[ "$(rows)" -gt "$before" ] || fail "no new metrics after re-attaching"

echo "== stop"
bm remote stop tiny_run || fail "stop"
bm remote status tiny_run --follow --interval 0.5 > follow.out 2>&1 || { cat follow.out; fail "follow after stop"; }
tail -n 1 follow.out | grep -q "tiny_run: stopped" || { cat follow.out; fail "not stopped"; }
[ -s "$RDIR/checkpoints/latest" ] || fail "no checkpoint after stop"
cmp "$RUN/metrics.jsonl" "$RDIR/metrics.jsonl" || fail "the mirrored metrics.jsonl differs from the remote one"
if bm remote stop tiny_run > stop2.out 2>&1; then fail "stopping a stopped run succeeded"; fi
grep -q "not running" stop2.out || { cat stop2.out; fail "no clear error for stopping a stopped run"; }

echo "== resume (each poll carrying at most 4 KiB: the mirror is filled in pieces)"
BIMAMBA_TEST_POLL_BYTES=4096 bm remote resume tiny_run --follow --interval 0.5 > resume.out 2>&1 || { cat resume.out; fail "resume"; }
tail -n 1 resume.out | grep -q "tiny_run: finished, step 3000/3000" || { cat resume.out; fail "resume did not finish"; }
cmp "$RUN/metrics.jsonl" "$RDIR/metrics.jsonl" || fail "the mirrored metrics.jsonl differs after resume"

echo "== fetch"
bm remote fetch tiny_run || fail "fetch"
[ -s "$RUN/checkpoints/latest" ] || fail "no checkpoints after fetch"
[ -f "$RUN/train.log" ] || fail "no train.log after fetch"
[ -f "$RUN/remote.json" ] || fail "fetch removed remote.json"
echo "PASS"
