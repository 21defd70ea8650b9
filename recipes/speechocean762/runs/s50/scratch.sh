#!/bin/bash
# Session 50: the built-in package's first system (XW-ftP) trained again from scratch by the recipe,
# with train.confidence_penalty=0.1 in both its stages (XWP) and without (XWC, the control, same seed
# and code), one thread each side by side. Each is put in the built-in package in place of its first
# system (runs/s49/first_pkg.py), its lexicon respelled in its own units (relex.py), priors redone, its own search re-tuned on valid on session 48's
# 250-point grid (lmtune_search, runs/lib.sh), then the package's rescoring (session 48's grid).
#   bash recipes/speechocean762/runs/s50/scratch.sh STAGE   (synth train package lmtune tune dev)
. "$(dirname "$0")/../lib.sh"
P=asr/pretrained/default X=$PWD/exp/s50 S49=recipes/speechocean762/runs/s49
mkdir -p $X
recipe() {  # target, run, extra overrides
  make -C recipes/speechocean762 $1 DATA=$PWD/data/so762 EXP=$X/$2 \
      EXTRA_OVERRIDES="train.threads=1 train.progress=false$3"
}
case $1 in
synth)  # the 1,500 synthetic sentences both runs train on
  recipe synth XWC "" > $X/synth.log 2>&1 ;;
train)  # the train and finetune stages
  OMP_NUM_THREADS=1 recipe finetune XWC "" > $X/XWC.log 2>&1 &
  OMP_NUM_THREADS=1 recipe finetune XWP " train.confidence_penalty=0.1" > $X/XWP.log 2>&1 &
  wait ;;
package)
  for r in XWC XWP; do
    python $S49/first_pkg.py $P $X/pkg_$r $X/$r/finetune/best
    python recipes/speechocean762/runs/s50/relex.py $X/pkg_$r  # its own units, not the built-in's
    OMP_NUM_THREADS=2 asr priors $X/pkg_$r data/so762/train.jsonl
  done ;;
lmtune)  # each first system's own search, alone
  for r in XWC XWP; do lmtune_search $X/pkg_$r $X/pkg_$r/lm.bin $X/pkg_$r/lexicon.txt $X/pkg_$r.lmtune.log; done ;;
tune)  # the package's rescoring
  for r in XWC XWP; do
    tune_package $X/pkg_$r $X/pkg_$r.tune.log
  done ;;
dev)  # after the choice on valid: each package as it rescores, then each first system alone (LM, greedy)
  ev() {  # run, decoder (auto: the package's rescoring)
    score_dev $X/pkg_$1 $X/rep_dev_$1_$2 $X/eval_dev_$1_$2.log --decoder $2
  }
  ev XWC auto & ev XWP auto & wait
  ev XWC beam & ev XWP beam & wait
  ev XWC greedy & ev XWP greedy & wait ;;
esac
