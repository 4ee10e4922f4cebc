#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, CMake option BIMAMBA_FUZZ) in
# build-fuzz with clang + ASan + UBSan, and runs each for a bounded time on a
# copy of its seed corpus. Exits non-zero when any target crashes (a sanitizer
# report, a leak, a timeout of 2 s, more than 2 GB of memory, an abort);
# the input is kept as build-fuzz/crashes/<target>/crash-* (or leak-*,
# timeout-*, oom-*). docs/reliability.md has the targets and figures.
# scripts/test.sh (CI) runs it as its fuzz stage: 30 s per target, two at a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 30 s
#   FUZZ_TARGETS="fuzz_safetensors fuzz_study_file" scripts/fuzz.sh 60
#   FUZZ_PARALLEL=2 (targets run at once), FUZZ_JOBS=2 (build parallelism), FUZZ_BUILD=build-fuzz
#
# Contained crashes: fuzz_hdf5_report reads through libhdf5, which crashes or
# loops on some damaged files in its own code; the workbench reads reports in
# a child process (ui::Hdf5Report::load), so such a crash costs the child and
# becomes an error. For the targets in FUZZ_CONTAINED (default
# fuzz_hdf5_report), an ASan report, a libFuzzer crash, a timeout or an
# allocation over the limit whose innermost frame of libhdf5's and ours is in
# libhdf5 is kept as crashes/<target>/contained/ and listed, and fuzzing goes
# on for the time left; any other report (UB, a leak, anything in our code)
# fails the stage as usual.
set -euo pipefail
secs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}
parallel=${FUZZ_PARALLEL:-1}
seeds=$root/tests/fuzz/corpus

command -v clang++ >/dev/null ||
  { echo "fuzz: clang++ not found (Debian: apt-get install clang libclang-rt-dev, or BIMAMBA_TEST_FUZZ=1 scripts/setup.sh)" >&2; exit 1; }
rt=$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
[[ "$(uname -m)" != x86_64 || -f "$rt" ]] ||
  { echo "fuzz: clang's libFuzzer runtime (libclang_rt.fuzzer) is missing (Debian: apt-get install libclang-rt-dev)" >&2; exit 1; }

cmake -S "$root" -B "$build" -G Ninja -DBIMAMBA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
ninja -C "$build" -j "$jobs"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do
    t=$(basename "$f" .cpp)
    # fuzz_hdf5_report is built only where HDF5 and Qt 6 Core are found (tests/fuzz/CMakeLists.txt).
    if [[ ! -x "$build/tests/fuzz/$t" ]]; then echo "fuzz: $t not built here (see tests/fuzz/CMakeLists.txt), skipped" >&2; continue; fi
    targets+=("$t")
  done
fi

# True when the report in log $1 is one of ASan's (any kind: libhdf5 is not
# instrumented, so what ASan sees there is its own reads and writes through
# memcpy and the like) or libFuzzer's crash, timeout or out-of-memory, and
# the innermost frame of either libhdf5 or ours (bimamba::, the target's
# entry) lies in libhdf5; for an RSS out-of-memory that is the stack of the
# largest live allocations libFuzzer lists (libhdf5 1.10 leaks on its error
# paths, leaks LSan is told to ignore, and one process fuzzing for minutes
# piles them up: 1.7 GB in 6,217 of its blocks in a local run; the
# workbench's reader is a child process per file). A leak report, UB, or any
# report whose innermost frame is ours fails. (Kinds met so far: SEGV, a
# negative-size copy, a heap-buffer-overflow read of 3,800 bytes in
# H5HG_read, allocations of GBs, loops, the pile-up.)
contained_in_libhdf5() {
  grep -qE 'ERROR: (AddressSanitizer: |libFuzzer: (deadly signal|timeout|out-of-memory))' "$1" || return 1
  grep -qE 'ERROR: LeakSanitizer|runtime error:' "$1" && return 1
  local frame
  frame=$(sed -n '/ERROR: /,$p' "$1" | grep -E '^ +#[0-9]+ ' | grep -E 'libhdf5|bimamba::|LLVMFuzzerTestOneInput' | head -1)
  [[ "$frame" == *libhdf5* ]]
}

# One target: fuzz a copy of its seeds; one result line in fuzz-logs/<target>.result.
run_target() {
  local t=$1
  local work=$build/fuzz-corpus/$t crashes=$build/crashes/$t log=$build/fuzz-logs/$t.log
  rm -rf "$work" "$crashes"
  mkdir -p "$work" "$crashes" "$(dirname "$log")"
  [[ -d "$seeds/$t" ]] && cp "$seeds/$t"/* "$work"/
  local scratch
  if [[ -w /dev/shm ]]; then scratch=$(mktemp -d /dev/shm/bimamba-fuzz.XXXXXX)
  else scratch=$(mktemp -d "${TMPDIR:-/tmp}/bimamba-fuzz.XXXXXX"); fi
  local rc=0 start=$SECONDS contained=0 left=$secs
  # The contained targets also get a malloc limit well under the RSS limit:
  # libhdf5 sizes some buffers from lengths in the file (a damaged vlen string
  # asked for 1.9 GB in H5T__conv_vlen), and an allocation under the RSS limit
  # succeeded, entered the corpus with its input and later ended runs as an RSS
  # out-of-memory that repeated at every restart until the stage failed. Over
  # this limit the allocation itself is reported, with its stack (contained
  # where it is libhdf5's).
  local limits=() is_contained=0
  [[ " ${FUZZ_CONTAINED-fuzz_hdf5_report} " == *" $t "* ]] && is_contained=1
  [[ $is_contained = 1 ]] && limits=(-malloc_limit_mb="${FUZZ_MALLOC_LIMIT_MB:-512}")
  : >"$log"
  while :; do
    rc=0
    BIMAMBA_FUZZ_SCRATCH=$scratch \
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      "$build/tests/fuzz/$t" "$work" -max_total_time="$left" -timeout=2 -rss_limit_mb=2048 "${limits[@]}" \
        -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log.run" 2>&1 || rc=$?
    cat "$log.run" >>"$log"
    # At most 100 contained restarts (the time bound ends the loop first: HDF5
    # 1.14 gave 20 in 150 s on a fresh Debian 13, and a cap of 20 failed it).
    if [[ $rc -ne 0 ]] && [[ $is_contained = 1 ]] && contained_in_libhdf5 "$log.run" &&
      [[ $contained -lt 100 ]]; then
      mkdir -p "$crashes/contained" && mv "$crashes"/{crash,timeout,oom}-* "$crashes/contained/" 2>/dev/null || true
      contained=$((contained + 1))
      left=$((secs - (SECONDS - start)))
      [[ $left -gt 2 ]] && continue
      rc=0
    fi
    break
  done
  rm -f "$log.run"
  rm -rf "$scratch"
  local execs last cov ft result
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{n += $1} END {if (NR) print n}')  # over restarts
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  if [[ $rc -ne 0 ]] || [[ -n "$(find "$crashes" -maxdepth 1 -type f)" ]]; then
    result="FAILED (rc $rc; $log; inputs in $crashes)"
  else
    result=ok
  fi
  [[ $contained -gt 0 ]] && result="$result ($contained contained in libhdf5: $crashes/contained)"
  printf '%-20s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result" >"$build/fuzz-logs/$t.result"
}

# A failed target's last sanitizer or libFuzzer report (up to 80 lines from
# its first line; the log's last 40 lines where none is found).
print_report() {
  local t=$1 lines=$2 log=$build/fuzz-logs/$1.log
  echo "---- $t: the last report in $log ----"
  if [[ -f "$log" ]]; then
    awk -v n="$lines" '/^==[0-9]+==ERROR|runtime error:|^==[0-9]+== ERROR|^ALARM: working on the last Unit/ {s = NR}
         {l[NR] = $0}
         END {b = s ? s : (NR > 40 ? NR - 39 : 1); for (i = b; i <= NR && i < b + n; i++) print l[i]}' "$log"
  else
    echo "(no log)"
  fi
}

# A failed target's kept inputs (not the contained ones), gzip'd and base64'd
# (up to 200,000 characters each: an HDF5 input of 10 KB, mostly zeros, is
# 1,376 characters), so they can be rebuilt from a log: base64 -d | gunzip > input.
print_inputs() {
  local t=$1 f
  while IFS= read -r f; do
    echo "---- $t: input $(basename "$f") ($(stat -c %s "$f") bytes), gzip | base64 -w 100 ----"
    gzip -9c "$f" | base64 -w 100 | head -c 200000
    echo
  done < <(find "$build/crashes/$t" -maxdepth 1 -type f 2>/dev/null | sort)
}

mkdir -p "$build/fuzz-logs"
rm -f "$build/fuzz-logs/failures.txt"
for t in "${targets[@]}"; do
  rm -f "$build/fuzz-logs/$t.result"
  while [[ $(jobs -rp | wc -l) -ge $parallel ]]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=()
printf '%-20s %12s %8s %8s  %s\n' target execs cov ft result
for t in "${targets[@]}"; do
  line=$(cat "$build/fuzz-logs/$t.result" 2>/dev/null || printf '%-20s %12s %8s %8s  %s' "$t" ? ? ? "FAILED (no result)")
  echo "$line"
  [[ "$line" == *" ok" || "$line" == *" ok ("* ]] || failed+=("$t")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  # The report and the inputs go to the output too: a fresh machine or a CI
  # runner keeps no build-fuzz/ to look into afterwards.
  # fuzz-logs/failures.txt holds the same, shorter: scripts/test.sh prints it
  # again after ctest, so it is in the last lines a CI log shows.
  for t in "${failed[@]}"; do
    { print_report "$t" 80; print_inputs "$t"; } >&2
  done
  for t in "${failed[@]}"; do print_inputs "$t"; print_report "$t" 45; done >"$build/fuzz-logs/failures.txt"
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each, no crash"
