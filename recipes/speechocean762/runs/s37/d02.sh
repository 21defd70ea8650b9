#!/usr/bin/env bash
# D02: the default recipe (XW-ftP's) with model.dropout=0.2 instead of 0.1, same seed, 2 threads.
# XW's valid loss flattened from epoch 9 (42.5) while its train loss halved (36 -> 19.6): overfitting.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
echo "start $(date -u)"
make -C recipes/speechocean762 $PWD/exp/s37/d02/finetune/train.done DATA=$PWD/data/full \
  EXP=$PWD/exp/s37/d02 EXTRA_OVERRIDES="model.dropout=0.2 train.threads=2"
echo "end $(date -u) rc=$?"
