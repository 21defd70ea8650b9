#!/usr/bin/env bash
# Session 57: the built-in package against a copy whose weight matrices are rounded to int8
# (q8sim.py), on valid then dev, each as the package decodes by default (its rescoring as tuned,
# no re-tuning), one thread each, side by side.   bash recipes/speechocean762/runs/s57/q8.sh
. "$(dirname "$0")/../lib.sh"
mkdir -p exp/s57
[ -d exp/s57/pkg_q8sim ] || python recipes/speechocean762/runs/s57/q8sim.py asr/pretrained/default exp/s57/pkg_q8sim
for split in valid test; do
  for m in builtin q8sim; do
    model=$([ $m = builtin ] && echo asr/pretrained/default || echo exp/s57/pkg_q8sim)
    score $split $model exp/s57/rep_${split}_$m exp/s57/eval_${split}_$m.log &
  done
  wait
  asr compare exp/s57/rep_${split}_builtin exp/s57/rep_${split}_q8sim > exp/s57/compare_$split.txt 2>&1
done
