#!/bin/bash
# Session 49: the built-in package's first system (XW-ftP, BPE units with an auxiliary phone CTC
# head) fine-tuned 5 more epochs with that head's targets spelled cmudict-first, against a control
# fine-tuned the same with the package's corpus-first order; each put back in the package, priors
# redone, rescoring re-tuned on valid on session 48's grid.
#   bash recipes/speechocean762/runs/s49/aux.sh [STAGE]   (train control package tune eval)
. "$(dirname "$0")/../lib.sh"
P=asr/pretrained/default X=exp/s49 LEXICON=$PWD/../shared/data/speechocean762/resource/lexicon.txt
FT="train.train_manifest=data/so762/train.jsonl train.valid_manifest=data/so762/valid.jsonl train.epochs=5
    train.threads=2 train.progress=false"
stage=${1:-train}
mkdir -p $X
finetune() {  # lexicon, run
  [ -e $2/best ] || OMP_NUM_THREADS=2 asr train $P/config.yaml $FT train.init_from=$P \
      train.phone_lexicon=$1 train.output_dir=$2 > $2.log 2>&1
}
case $stage in
train)
  finetune cmudict,$LEXICON $X/ft1 ;;
control)
  finetune $LEXICON,cmudict $X/ctl1 ;;
package)
  for r in ft1 ctl1; do
    python recipes/speechocean762/runs/s49/first_pkg.py $P $X/pkg_$r $X/$r/best
    OMP_NUM_THREADS=2 asr priors $X/pkg_$r data/so762/train.jsonl
  done ;;
tune)
  for r in ft1 ctl1; do tune_package $X/pkg_$r $X/pkg_$r.tune.log; done ;;
eval)  # the arm that valid prefers, on dev
  score_dev $X/pkg_${2:?which arm} $X/rep_dev_$2 $X/eval_dev_$2.log ;;
esac
