#!/bin/bash
# Each system of the package copy re-tuned with prior scales 0 / 0.3 / 0.45 beside its usual grid
# (valid, beam 100, 30 tokens per frame), then the rescoring weights, then dev scored.
set -e
P=exp/s33/pkg
GRID="--lm-weights 1.5,2,2.5,3,3.5 --word-scores=-2,-1,0,1 --blank-penalties 1,1.5,2,2.5 --prior-scales 0,0.3,0.45"
for d in . system2 system3; do
  echo "== $d"
  OMP_NUM_THREADS=1 asr lm tune data/so762/valid.jsonl --model $P/$d --lm $P/lm.bin --lexicon $P/$d/lexicon.txt \
      --beam-size 100 --beam-size-token 30 $GRID --decode-workers 2 2> $P/tune_${d/./root}.err
done
