#!/bin/bash
# Rescoring with a prior-scale grid: A) systems searching with their tuned prior scales (exp/s33/pkg),
# B) systems searching as the built-in package does (exp/s33/pkg0, priors added for the scores only).
set -e
for P in exp/s33/pkg exp/s33/pkg0; do
  n=$(basename $P)
  echo "== $n"
  asr tune-rescoring data/so762/valid.jsonl --model $P --combine $P/system2 $P/system3 --rnnlm $P/rnnlm \
      --prior-scales 0,0.3,0.45,0.6 -o exp/s33/resc_grid_$n.yaml --decode-workers 2 2>&1 | tail -n 2
  asr evaluate data/so762/test.jsonl --rescoring exp/s33/resc_grid_$n.yaml --json --decode-workers 2 \
      --report exp/s33/rep_grid_$n --force 2>/dev/null | tail -n 1
  asr compare exp/s32/rep_pkg exp/s33/rep_grid_$n | sed -n 1,11p
done
