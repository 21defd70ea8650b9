#!/bin/bash
# Session 48: the built-in package's three phone systems fine-tuned 5 epochs on cmudict-first
# spellings (the corpus lexicon only for words cmudict lacks), repackaged, rescoring re-tuned on
# valid, scored on dev. Control: system2 fine-tuned the same with the package's own corpus-first
# lexicon, packaged and its search tuned the same (ctlpkg/system2).
#   bash recipes/speechocean762/runs/s48/respell.sh [STAGE]   (train control package lmtune ctltune tune eval)
# (exp/s48/ft2 ran as `train` does, from a copy of system2 whose tokenizer was respelled by hand before
# `asr train` learned to respell: the same targets, weights and seed.)
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
P=asr/pretrained/default X=exp/s48 LEXICON=$PWD/../shared/data/speechocean762/resource/lexicon.txt
FT="train.train_manifest=data/so762/train.jsonl train.valid_manifest=data/so762/valid.jsonl train.epochs=5
    train.threads=2 train.progress=false"
stage=${1:-train}
lmtune() {  # package, system, log
  asr lm tune data/so762/valid.jsonl --model $1/$2 --lm $1/lm.bin --lexicon $1/$2/lexicon.txt \
      --lm-weights=2,2.5,3,3.5,4 --word-scores=-3,-2,-1,0,1 --blank-penalties=0,0.5,1,1.5,2 --prior-scales=0.3,0.45 \
      --beam-size 100 --beam-size-token 30 --decode-workers 2 > $3 2>&1
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
  asr tune-rescoring data/so762/valid.jsonl --model $X/pkg --combine $X/pkg/system2 $X/pkg/system3 $X/pkg/system4 \
      --rnnlm $X/pkg/rnnlm --prior-scales=0,0.3,0.45 --weights=0,0.25,0.5,1,1.5 -o $X/pkg/rescoring.yaml \
      --decode-workers 2 > $X/tune.log 2>&1 ;;
eval)
  OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --model $X/pkg --decode-workers 1 --json \
      --report $X/rep_dev --force > $X/eval_dev.log 2>&1 ;;
esac
