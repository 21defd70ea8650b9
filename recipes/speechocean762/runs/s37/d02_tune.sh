#!/usr/bin/env bash
# After d02.sh: the recipe's tune stage for D02-ft (the same commands as `make tune`, 2 decode workers),
# then dev alone, packaged as the recipe packages a single system.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
while [ ! -f exp/s37/d02/finetune/train.done ]; do sleep 30; done
echo "tune start $(date -u)"
M=exp/s37/d02/finetune/best
asr priors $M data/full/train.jsonl
asr lm tune data/full/valid.jsonl --model $M --lm exp/full/lm/words_4gram.arpa \
  --lm-weights=0.5,1,1.5,2,2.5,3,3.5,4 --word-scores=-3,-2,-1,0,1,2,3 --blank-penalties=0,0.5,1,1.5,2 \
  --prior-scales=0,0.3,0.45 --beam-size 100 --beam-size-token 30 --decode-workers 2
echo "tune end $(date -u)"
