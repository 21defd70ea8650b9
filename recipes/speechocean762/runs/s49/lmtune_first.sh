#!/bin/bash
# Session 49: the first system's own search (its decoding.yaml: LM weight, word score, blank penalty,
# prior scale) re-tuned on valid in a package made by first_pkg.py, on session 48's 250-point grid
# around the built-in package's, before its rescoring is re-tuned.
#   bash recipes/speechocean762/runs/s49/lmtune_first.sh PACKAGE
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
asr lm tune data/so762/valid.jsonl --model $1 --lm $1/lm.bin --lexicon $1/lexicon.txt \
    --lm-weights=2,2.5,3,3.5,4 --word-scores=-3,-2,-1,0,1 --blank-penalties=0,0.5,1,1.5,2 --prior-scales=0.3,0.45 \
    --beam-size 100 --beam-size-token 30 --decode-workers 2 > $1.lmtune.log 2>&1
