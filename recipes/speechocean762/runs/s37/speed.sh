#!/usr/bin/env bash
# The new built-in package (four systems, exp/full_pkg4) against the one it replaces, alternating.
# new run 1 ran at 06:17 UTC (134.26 s); this continues with old 1, new 2, old 2.
set -eu
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
export OMP_NUM_THREADS=1
for run in old_1 new_2 old_2; do
  p=${run%_*}
  pkg=asr/pretrained/default; [ $p = old ] && pkg=exp/s37/old/asr/pretrained/default
  echo "== $run $(date -u +%H:%M:%S)"
  asr evaluate data/so762/test.jsonl --model $pkg --decode-workers 1 --report exp/s37/rep_$run > exp/s37/$run.txt
  cat exp/s37/$run.txt
done
echo "== done $(date -u +%H:%M:%S)"
