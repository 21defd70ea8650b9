#!/bin/bash
# Session 49: the confidence penalty again, on a phone system: the built-in package's system2 fine-tuned
# 5 epochs on its own (corpus-first) spellings, with train.confidence_penalty=0.1 (s2cp) and without
# (s2ctl); each packaged as session 48's respell_pkg.py does, priors redone, its search tuned on valid
# on session 48's grid, then scored alone on dev.
#   bash recipes/speechocean762/runs/s49/phone_penalty.sh [STAGE]   (train package lmtune eval)
. "$(dirname "$0")/../lib.sh"
P=asr/pretrained/default X=exp/s49 LEXICON=$PWD/../shared/data/speechocean762/resource/lexicon.txt
mkdir -p $X
finetune() {  # run, extra override
  [ -e $X/$1/best ] || OMP_NUM_THREADS=2 asr train $P/system2/config.yaml train.train_manifest=data/so762/train.jsonl \
      train.valid_manifest=data/so762/valid.jsonl train.epochs=5 train.threads=2 train.progress=false \
      train.init_from=$P/system2 train.phone_lexicon=$LEXICON,cmudict train.output_dir=$X/$1 $2 > $X/$1.log 2>&1
}
case ${1:-train} in
train)
  finetune s2ctl ""
  finetune s2cp train.confidence_penalty=0.1 ;;
package)
  for r in s2ctl s2cp; do
    python recipes/speechocean762/runs/s48/respell_pkg.py $P $X/pkg_$r $X/$r/best
    OMP_NUM_THREADS=2 asr priors $X/pkg_$r/system2 data/so762/train.jsonl
  done ;;
lmtune)
  for r in s2ctl s2cp; do
    lmtune_search $X/pkg_$r/system2 $X/pkg_$r/lm.bin $X/pkg_$r/system2/lexicon.txt $X/pkg_$r.lmtune.log
  done ;;
eval)
  for r in s2ctl s2cp; do
    score_dev $X/pkg_$r/system2 $X/rep_dev_$r $X/eval_dev_$r.log &
  done
  wait ;;
esac
