#!/bin/sh
# The package's LSTM LM retrained so that <unk> is trained (the recipe README's "A trained <unk>";
# not adopted). Run from the repository root after ../rnnlm_bwd/run.sh's dump.py steps, which
# write the package's pooled candidates to exp/s45/{valid,dev}_cands.pkl; writes under exp/s46/.
set -e
LM="data/so762/train.jsonl ../shared/data/text/ljspeech-13100.txt --repeat 10,1 --dev data/so762/valid.jsonl"
# the package's own LSTM, as a check: valid 47.58%, dev 38.65%
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_unk/score.py package dev
# words seen once an epoch (LJ Speech singletons) train <unk>
OMP_NUM_THREADS=1 asr lm rnn $LM -o exp/s46/rnnlm_mc2 --threads 1 --checks-per-epoch 1 --halvings 0 --min-count 2
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_unk/score.py exp/s46/rnnlm_mc2 dev
# every vocabulary word, 3% of the input words replaced by <unk> while training (a patched loss)
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_unk/unk_dropout.py 0.03 exp/s46/rnnlm_ud3
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_unk/score.py exp/s46/rnnlm_ud3 dev
# the package's LSTM fed </s> for a word it does not know (a restart), no training
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_unk/eos_for_unknown.py
