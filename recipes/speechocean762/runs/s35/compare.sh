#!/bin/bash
# After exp/s34/full.sh: the one-make package against the built-in one, on valid and dev (paired).
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
set -x
grep -A12 "^tuned" exp/full_pkg/rescoring.yaml
for m in full_pkg; do
  asr evaluate data/so762/valid.jsonl --model exp/$m --json --decode-workers 2 --report exp/s35/rep_valid_$m --force | tail -n 1
done
asr evaluate data/so762/valid.jsonl --json --decode-workers 2 --report exp/s35/rep_valid_builtin --force | tail -n 1
asr compare exp/s35/rep_valid_builtin exp/s35/rep_valid_full_pkg | sed -n 1,12p
asr compare exp/s33/rep_pkg_final exp/full/test_pkg_report | sed -n 1,12p
du -sh exp/full_pkg asr/pretrained/default
for d in exp/full/finetune exp/full/phones7/finetune exp/full/phones42/finetune; do echo $d; grep -E "lm_weight|word_score|blank|prior|valid_wer" $d/best/decoding.yaml; done
