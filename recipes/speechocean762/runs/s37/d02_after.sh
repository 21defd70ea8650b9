#!/usr/bin/env bash
# After d02_tune.sh: D02-ft packaged as the recipe packages a system, dev alone, then in place of
# the subword system in the four-system rescoring (valid decides; F4's unpackaged tuning: 47.83%).
set -eu
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
while ! grep -q "tune end" exp/s37/d02_tune.log 2>/dev/null; do sleep 30; done
echo "after start $(date -u)"
P=exp/s37/d02/finetune/package
rm -rf $P.tmp && asr export exp/s37/d02/finetune/best $P.tmp --half --lm exp/full/lm/words_4gram.arpa && rm -rf $P && mv $P.tmp $P
asr evaluate data/full/test.jsonl --model $P --decode-workers 2 --report exp/s37/d02_alone | tail -n 1
asr tune-rescoring data/full/valid.jsonl --model $P --combine exp/full/phones7/package exp/full/phones42/package \
  exp/full/phones3/package --rnnlm exp/full/lm/rnnlm --prior-scales=0,0.3,0.45 --weights=0,0.25,0.5,1,1.5 \
  -o exp/s37/d02_resc.yaml
tail -8 exp/s37/d02_resc.yaml
asr evaluate data/full/test.jsonl --rescoring exp/s37/d02_resc.yaml --decode-workers 2 --report exp/s37/d02_resc_report | tail -n 1
echo "after end $(date -u)"
