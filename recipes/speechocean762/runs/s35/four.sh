#!/bin/bash
# Four systems: the built-in three and the one-make run's phone-7 system; 0 allowed in the weights.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
B=asr/pretrained/default
date -u
asr tune-rescoring data/so762/valid.jsonl --model $B --combine $B/system2 $B/system3 exp/full_pkg/system2 \
  --rnnlm $B/rnnlm --prior-scales 0,0.3,0.45 --weights 0,0.25,0.5,1,1.5 -o exp/s35/four.yaml --decode-workers 2
date -u
asr evaluate data/so762/test.jsonl --rescoring exp/s35/four.yaml --json --decode-workers 2 --report exp/s35/rep_four --force | tail -n 1
asr compare exp/s33/rep_pkg_final exp/s35/rep_four | sed -n 1,11p
date -u
