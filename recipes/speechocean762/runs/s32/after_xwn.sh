#!/usr/bin/env bash
# After XWN's fine-tuning: tune its beam search on valid with the package's LM mix, package it,
# score it on valid and dev (greedy and with the LM), and compare with XW-ftP (the package's first system).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
while [ ! -f exp/XWN/finetune/train.done ]; do sleep 30; done
M=exp/XWN/finetune/best
date -u +"start %T"
asr lm tune data/so762/valid.jsonl --model $M --lm exp/lmx/mix3.arpa --beam-size 100 --beam-size-token 30 \
  --lm-weights 1,1.5,2,2.5,3 --word-scores=-2,-1,0,1,2,3 --blank-penalties 1,2 --decode-workers 2 > exp/s32/tune_xwn.log 2>&1
date -u +"tuned %T"
rm -rf exp/s32/pkg_XWN && asr export $M exp/s32/pkg_XWN --half --lm exp/lmx/mix3.arpa > exp/s32/export_xwn.log 2>&1
asr evaluate data/so762/valid.jsonl --model exp/s32/pkg_XWN --decoder greedy --json 2>/dev/null | tail -1 > exp/s32/xwn_valid_greedy.json
asr evaluate data/so762/test.jsonl --model exp/s32/pkg_XWN --decoder greedy --json 2>/dev/null | tail -1 > exp/s32/xwn_dev_greedy.json
asr evaluate data/so762/test.jsonl --model exp/s32/pkg_XWN --json --report exp/s32/rep_XWN --force --decode-workers 2 2>/dev/null | tail -1 > exp/s32/xwn_dev_lm.json
asr compare exp/s32/rep_xw_beam exp/s32/rep_XWN > exp/s32/compare_xw_xwn.txt 2>&1 || true
date -u +"done %T"
