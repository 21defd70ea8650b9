#!/bin/bash
# The package with prior correction: its own rescoring.yaml re-tuned as packaged (prior scales too), scored on dev.
set -e
while pgrep -f resc_grid.sh > /dev/null; do sleep 10; done
P=exp/s33/pkg
asr tune-rescoring data/so762/valid.jsonl --model $P --combine $P/system2 $P/system3 --rnnlm $P/rnnlm \
    --prior-scales 0,0.3,0.45 -o $P/rescoring.yaml --decode-workers 2 2>&1 | tail -n 2
/usr/bin/time -v asr evaluate data/so762/test.jsonl --model $P --json --decode-workers 2 --report exp/s33/rep_pkg_final --force 2> exp/s33/eval_final.err | tail -n 1
grep -E 'Elapsed|Maximum resident' exp/s33/eval_final.err
asr compare exp/s32/rep_pkg exp/s33/rep_pkg_final | sed -n 1,11p
