#!/bin/bash
# the R3g package again with homophone-capped, likeliest-first lexicons, tuned and scored
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
rm -rf exp/s1c exp/pkg_R3y
asr export exp/xw exp/s1c --half --lm exp/lmx/mix3.arpa
sed 's#/work/main/exp/s1x#/work/main/exp/s1c#' exp/lmx/r3x.yaml > exp/lmx/r3c.yaml
asr export exp/lmx/r3c.yaml exp/pkg_R3y
sed -i 's#source_lm: /work/main/exp/lmx/mix3.arpa#source_lm: exp/lmx/mix3.arpa#' exp/pkg_R3y/decoding.yaml
asr tune-rescoring data/so762/valid.jsonl --model exp/pkg_R3y --combine exp/pkg_R3y/system2 exp/pkg_R3y/system3 --rnnlm exp/pkg_R3y/rnnlm -o exp/pkg_R3y/rescoring.yaml --decode-workers 2 > exp/lmx/tune_pkgy.log 2>&1
asr evaluate data/so762/test.jsonl --model exp/pkg_R3y --report exp/rep_pkg_R3y --decode-workers 2 > exp/lmx/eval_pkgy.log 2>&1
echo done
