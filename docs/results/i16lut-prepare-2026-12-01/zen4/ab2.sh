#!/bin/bash
# usage: ab2.sh A B N extra-args...  alternates bench cpu on the 780m binary file only
A=$1; B=$2; N=$3; shift 3
for i in $(seq 1 $N); do
  for bin in $A $B; do
    $bin bench cpu --shape none --model ${MODEL:-/tmp/bimamba-bench/780m-binary-q8head.bmd} --threads 2 --state f16 --tokens 32 --error-tokens 1 --json "$@" 2>/dev/null | python3 -c "
import sys, json
for l in sys.stdin:
    e = json.loads(l)
    if e.get('event') == 'stats':
        p = e['profile_ms']
        print('$(basename $bin)'.ljust(8), 'dec %.1f pre %.1f roof %.1f%%' % (e['tok_per_s'], e['prefill_tok_per_s'], 100*e['roofline']), 'reads', ' '.join('%.0f' % v for v in e['read_gbps_reps']), '|', ' '.join('%s=%.2f' % (k, p[k]) for k in ('in_proj','ssm','out_proj','head','total')))
"
  done
done
