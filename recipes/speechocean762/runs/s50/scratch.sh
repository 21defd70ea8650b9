#!/bin/bash
# Session 50: the built-in package's first system (XW-ftP) trained again from scratch by the recipe,
# with train.confidence_penalty=0.1 in both its stages (XWP) and without (XWC, the control, same seed
# and code), one thread each side by side. Each is put in the built-in package in place of its first
# system (runs/s49/first_pkg.py), its lexicon respelled in its own units (relex.py), priors redone, its own search re-tuned on valid on session 48's
# 250-point grid (runs/s49/lmtune_first.sh), then the package's rescoring (session 48's grid).
#   bash recipes/speechocean762/runs/s50/scratch.sh STAGE   (synth train package lmtune tune dev)
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
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
  bash $S49/lmtune_first.sh $X/pkg_XWC
  bash $S49/lmtune_first.sh $X/pkg_XWP ;;
tune)  # the package's rescoring
  for r in XWC XWP; do
    asr tune-rescoring data/so762/valid.jsonl --model $X/pkg_$r --combine $X/pkg_$r/system2 $X/pkg_$r/system3 \
        $X/pkg_$r/system4 --rnnlm $X/pkg_$r/rnnlm --prior-scales=0,0.3,0.45 --weights=0,0.25,0.5,1,1.5 \
        -o $X/pkg_$r/rescoring.yaml --decode-workers 2 > $X/pkg_$r.tune.log 2>&1
  done ;;
dev)  # after the choice on valid: each package as it rescores, then each first system alone (LM, greedy)
  ev() {  # run, decoder (auto: the package's rescoring)
    OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --model $X/pkg_$1 --decoder $2 --decode-workers 1 --json \
        --report $X/rep_dev_$1_$2 --force > $X/eval_dev_$1_$2.log 2>&1
  }
  ev XWC auto & ev XWP auto & wait
  ev XWC beam & ev XWP beam & wait
  ev XWC greedy & ev XWP greedy & wait ;;
esac
