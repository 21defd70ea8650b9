#!/bin/sh
# A backward LSTM LM beside the package's forward one in n-best rescoring (row RBw of the results
# table; not adopted). Run from the repository root; writes under exp/s45/.
set -e
mkdir -p exp/s45/rev
python - <<'PY'
from asr.lm import read_sentences
for src, dst in [("data/so762/train.jsonl", "exp/s45/rev/train.txt"),
                 ("../shared/data/text/ljspeech-13100.txt", "exp/s45/rev/lj.txt"),
                 ("data/so762/valid.jsonl", "exp/s45/rev/valid.txt")]:
    with open(dst, "w") as f:
        for s in read_sentences([src]):
            if s:
                f.write(" ".join(reversed(s)) + "\n")
PY
# the package's LSTM LM's command (R3r) on the reversed sentences
OMP_NUM_THREADS=1 asr lm rnn exp/s45/rev/train.txt exp/s45/rev/lj.txt --repeat 10,1 --dev exp/s45/rev/valid.txt \
  -o exp/s45/rnnlm_bwd --threads 1 --checks-per-epoch 1 --halvings 0
# the package's pooled candidates on valid and dev (its searches, prior scale 0.45)
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_bwd/dump.py data/so762/valid.jsonl exp/s45/valid_cands.pkl
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_bwd/dump.py data/so762/test.jsonl exp/s45/dev_cands.pkl
# tune on valid (weights x LM weight x word score per backward share beta), then score dev with valid's choice;
# LAM_B=1.0: the backward LSTM alone instead of mixed with the n-gram
OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_bwd/bidir.py exp/s45/rnnlm_bwd dev
LAM_B=1.0 OMP_NUM_THREADS=1 python recipes/speechocean762/runs/rnnlm_bwd/bidir.py exp/s45/rnnlm_bwd dev
