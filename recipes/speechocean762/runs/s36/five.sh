#!/bin/bash
# Five systems (the four of exp/full_pkg4 plus subword seed 7), tuned on valid only, into exp/s36/five.yaml.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && R=$PWD && date -u
.venv/bin/asr tune-rescoring $R/data/full/valid.jsonl --model $R/exp/full/finetune/package \
  --combine $R/exp/full/phones7/package $R/exp/full/phones42/package $R/exp/full/phones3/package $R/exp/full/seed7/package \
  --rnnlm $R/exp/full/lm/rnnlm --prior-scales=0,0.3,0.45 --weights=0,0.25,0.5,1,1.5 -o $R/exp/s36/five.yaml
date -u
