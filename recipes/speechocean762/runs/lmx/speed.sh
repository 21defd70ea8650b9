#!/bin/bash
# decode time of the old and new built-in packages on dev, one thread each, alternating
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
asr evaluate data/so762/test.jsonl --model asr/pretrained/default --decoder beam --report exp/rep_pkg_beam > exp/lmx/eval_pkg_beam.log 2>&1
for i in 1 2; do
  for p in exp/old/asr/pretrained/default asr/pretrained/default; do
    echo "$(date -u +%H:%M:%S) $p" >> exp/lmx/speed.txt
    OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --model $p --decode-workers 1 --json 2>/dev/null | tail -1 >> exp/lmx/speed.txt
  done
done
