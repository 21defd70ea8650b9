#!/bin/bash
# Session 48: the built-in package's three phone systems fine-tuned 5 epochs on cmudict-first
# spellings (the corpus lexicon only for words cmudict lacks), repackaged, rescoring re-tuned on
# valid, scored on dev. Control: system2 fine-tuned the same with the package's own corpus-first
# lexicon, packaged and its search tuned the same (ctlpkg/system2).
#   bash recipes/speechocean762/runs/s48/respell.sh [STAGE]   (train control package lmtune ctltune tune eval)
# (exp/s48/ft2 ran as `train` does, from a copy of system2 whose tokenizer was respelled by hand before
# `asr train` learned to respell: the same targets, weights and seed.)
. "$(dirname "$0")/../lib.sh"
P=asr/pretrained/default X=exp/s48 LEXICON=$PWD/../shared/data/speechocean762/resource/lexicon.txt
FT="train.train_manifest=data/so762/train.jsonl train.valid_manifest=data/so762/valid.jsonl train.epochs=5
    train.threads=2 train.progress=false"
stage=${1:-train}
lmtune() {  # package, system, log
  lmtune_search $1/$2 $1/lm.bin $1/$2/lexicon.txt $3
}
mkdir -p $X
finetune() {  # system, lexicon, run
  [ -e $3/best ] || OMP_NUM_THREADS=2 asr train $P/$1/config.yaml $FT train.init_from=$P/$1 \
      train.phone_lexicon=$2 train.output_dir=$3 > $3.log 2>&1
}
case $stage in
train)
  for n in 2 3 4; do finetune system$n cmudict,$LEXICON $X/ft$n; done ;;
control)
  finetune system2 $LEXICON,cmudict $X/ctl2 ;;
package)
  python recipes/speechocean762/runs/s48/respell_pkg.py $P $X/pkg $X/ft2/best $X/ft3/best $X/ft4/best
  for n in 2 3 4; do OMP_NUM_THREADS=2 asr priors $X/pkg/system$n data/so762/train.jsonl; done ;;
lmtune)  # each phone system's search weights again, on a grid around the package's
  for n in 2 3 4; do lmtune $X/pkg system$n $X/lmtune$n.log; done ;;
ctltune)
  python recipes/speechocean762/runs/s48/respell_pkg.py $P $X/ctlpkg $X/ctl2/best
  OMP_NUM_THREADS=2 asr priors $X/ctlpkg/system2 data/so762/train.jsonl
  lmtune $X/ctlpkg system2 $X/ctltune2.log ;;
tune)
  tune_package $X/pkg $X/tune.log ;;
eval)
  score_dev $X/pkg $X/rep_dev $X/eval_dev.log ;;
esac
