#!/usr/bin/env bash
# Session 57, after q8.sh: which part costs, and whether a scale per 32 weights (q8_0) costs less.
# pkg_q8b32: every matrix at a scale per 32 weights; pkg_q8am: per row, the LSTM LM left in float16.
. "$(dirname "$0")/../lib.sh"
for split in valid test; do
  for m in q8b32 q8am; do
    score $split exp/s57/pkg_$m exp/s57/rep_${split}_$m exp/s57/eval_${split}_$m.log &
  done
  wait
  for m in q8b32 q8am; do
    asr compare exp/s57/rep_${split}_builtin exp/s57/rep_${split}_$m > exp/s57/compare_${split}_$m.txt 2>&1
  done
done
