#!/bin/bash
# usage: abk.sh N extra-args...  alternates bench cpu with --binary-kernel i16lut / i8lut on the 780m binary file
N=$1; shift
for i in $(seq 1 $N); do
  for k in i16lut i8lut; do
    /work/main/build/app/bimamba bench cpu --shape none --model ${MODEL:-/tmp/bimamba-bench/780m-binary-q8head.bmd} --threads ${T:-2} --state f16 --tokens 32 --error-tokens 1 --binary-kernel $k --json "$@" 2>/dev/null | python3 -c "
import sys, json
for l in sys.stdin:
    e = json.loads(l)
    if e.get('event') == 'machine': cs = e.get('core_share', 0)
    if e.get('event') == 'stats':
        p = e['profile_ms']
        print('$k'.ljust(7), 'dec %.1f pre %.1f roof %.1f%% cs %.2f' % (e['tok_per_s'], e['prefill_tok_per_s'], 100*e['roofline'], cs), 'reads', ' '.join('%.0f' % v for v in e['read_gbps_reps']), '|', ' '.join('%s=%.2f' % (k, p[k]) for k in ('in_proj','ssm','out_proj','head','total')))
"
  done
done
