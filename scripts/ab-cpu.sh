#!/bin/bash
# Two builds of bimamba, side by side on a noisy machine: `bench cpu` alternated
# A B, B A, A B, ... for N pairs, and a summary of the decode tok/s and of the
# % of the memory roofline. The roofline of each decode rep uses the bandwidth
# measured just before that rep, so it follows the machine's state better than
# tok/s alone (docs/deploy-format.md, sessions 16 and 21).
#
#   scripts/ab-cpu.sh OLD_BIMAMBA NEW_BIMAMBA PAIRS [bench cpu options...]
#   e.g. scripts/ab-cpu.sh /tmp/old/app/bimamba build/app/bimamba 5 --shape 780m --threads 2 --kernels i16lut
#
# Each run's JSON lines and report are kept under $AB_DIR (default /tmp/bimamba-ab).
# Only the first binary row of each run counts (the shape's binary model with the
# first of --kernels; the fp16 baseline rows are left out).
set -euo pipefail
export LC_ALL=C  # "." decimals in printf and sort
if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OLD=$1 NEW=$2 PAIRS=$3
shift 3
for b in "$OLD" "$NEW"; do
    [ -x "$b" ] || { echo "ab-cpu: $b is not an executable" >&2; exit 2; }
done
case "$PAIRS" in '' | *[!0-9]*) echo "ab-cpu: PAIRS must be a positive number, not '$PAIRS'" >&2; exit 2 ;; esac
[ "$PAIRS" -ge 1 ] || { echo "ab-cpu: PAIRS must be at least 1" >&2; exit 2; }
DIR=${AB_DIR:-/tmp/bimamba-ab}
mkdir -p "$DIR"

# field NAME FILE: the first binary stats line's value of NAME (a number or a [list]).
field() {
    grep '"event":"stats"' "$2" | grep '"weights":"binary"' | head -1 |
        sed -n "s/.*\"$1\":\(\[[^]]*\]\|[-0-9.e+]*\).*/\1/p" | tr -d '[]' || true
}
median() { tr ', ' '\n\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) printf "%.12g\n", v[(NR+1)/2]; else printf "%.12g\n", (v[NR/2]+v[NR/2+1])/2}'; }

pct() { echo "$1" | tr ',' '\n' | awk 'NF {printf "%s%.0f", (n++ ? " " : ""), 100 * $1}'; }  # fractions as whole %

printf '%-5s %-5s %10s  %s\n' pair first "old tok/s" "new tok/s   old roofline reps (%) | new roofline reps (%)"
: > "$DIR/old-tok" ; : > "$DIR/new-tok"; : > "$DIR/old-roof"; : > "$DIR/new-roof"
ahead_tok=0 ahead_roof=0
for ((i = 1; i <= PAIRS; i++)); do
    if ((i % 2)); then order="old new"; else order="new old"; fi
    for v in $order; do
        bin=$OLD
        [ "$v" = new ] && bin=$NEW
        "$bin" bench cpu --json "$@" > "$DIR/$v-$i.jsonl" 2> "$DIR/$v-$i.txt" || {
            echo "ab-cpu: $bin bench cpu failed; its report: $DIR/$v-$i.txt" >&2
            tail -5 "$DIR/$v-$i.txt" >&2
            exit 1
        }
    done
    ot=$(field tok_per_s "$DIR/old-$i.jsonl") nt=$(field tok_per_s "$DIR/new-$i.jsonl")
    orf=$(field roofline_reps "$DIR/old-$i.jsonl") nrf=$(field roofline_reps "$DIR/new-$i.jsonl")
    if [ -z "$ot" ] || [ -z "$nt" ]; then
        echo "ab-cpu: no binary row in pair $i (give --shape, or --model with a binary file): $DIR/old-$i.txt, $DIR/new-$i.txt" >&2
        exit 1
    fi
    echo "$ot" >> "$DIR/old-tok"
    echo "$nt" >> "$DIR/new-tok"
    echo "$orf" | tr ',' '\n' >> "$DIR/old-roof"
    echo "$nrf" | tr ',' '\n' >> "$DIR/new-roof"
    awk -v a="$nt" -v b="$ot" 'BEGIN {exit !(a > b)}' && ahead_tok=$((ahead_tok + 1))
    awk -v a="$(echo "$nrf" | median)" -v b="$(echo "$orf" | median)" 'BEGIN {exit !(a > b)}' && ahead_roof=$((ahead_roof + 1))
    printf '%-5s %-5s %10.2f  %9.2f   %s | %s\n' "$i" "${order%% *}" "$ot" "$nt" "$(pct "$orf")" "$(pct "$nrf")"
done
ot=$(median < "$DIR/old-tok") nt=$(median < "$DIR/new-tok")
orf=$(median < "$DIR/old-roof") nrf=$(median < "$DIR/new-roof")
printf 'median decode tok/s: old %.2f, new %.2f (new/old %.3f); new ahead in %d of %d pairs\n' "$ot" "$nt" \
    "$(awk -v a="$nt" -v b="$ot" 'BEGIN {printf "%.6f", a / b}')" "$ahead_tok" "$PAIRS"
printf 'median %% of the roofline over all reps: old %.1f, new %.1f; new ahead in %d of %d pairs (by the pair'"'"'s median rep)\n' \
    "$(awk -v a="$orf" 'BEGIN {printf "%.6f", 100 * a}')" "$(awk -v a="$nrf" 'BEGIN {printf "%.6f", 100 * a}')" "$ahead_roof" "$PAIRS"
echo "reports and JSON lines: $DIR"
