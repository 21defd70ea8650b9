#!/bin/bash
# The package's search weights sat on the grid's lower edges (word score -2, blank penalty 1):
# re-tune each system past them (word score to -3, blank penalty to 0, prior scale to 0.6), then the rescoring.
set -e
P=exp/s33/pkg2
GRID="--lm-weights 1.5,2,2.5,3,3.5 --word-scores=-3,-2,-1,0,1 --blank-penalties 0,0.5,1,1.5 --prior-scales 0.3,0.45,0.6"
for d in . system2 system3; do
  echo "== $d"
  OMP_NUM_THREADS=1 asr lm tune data/so762/valid.jsonl --model $P/$d --lm $P/lm.bin --lexicon $P/$d/lexicon.txt \
      --beam-size 100 --beam-size-token 30 $GRID --decode-workers 2 2> exp/s33/tune_edges_${d/./root}.err
done
asr tune-rescoring data/so762/valid.jsonl --model $P --combine $P/system2 $P/system3 --rnnlm $P/rnnlm \
    --prior-scales 0,0.3,0.45 -o $P/rescoring.yaml --decode-workers 2 2>&1 | tail -n 1
