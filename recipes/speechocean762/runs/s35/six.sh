#!/bin/bash
# Six systems: the built-in package's three and the one-make package's three (independent replicas).
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
B=asr/pretrained/default F=exp/full_pkg
date -u
time asr tune-rescoring data/so762/valid.jsonl --model $B --combine $B/system2 $B/system3 $F $F/system2 $F/system3 \
  --rnnlm $B/rnnlm --prior-scales 0,0.3,0.45 -o exp/s35/six.yaml --decode-workers 2
date -u
time asr evaluate data/so762/test.jsonl --rescoring exp/s35/six.yaml --json --decode-workers 2 --report exp/s35/rep_six --force | tail -n 1
asr compare exp/s33/rep_pkg_final exp/s35/rep_six | sed -n 1,12p
date -u
