#!/bin/bash
# Session 49: the built-in package's first system fine-tuned 5 more epochs as aux.sh's control
# (corpus-first phone targets) with a confidence penalty of 0.1 (train.confidence_penalty), put
# back in the package, priors redone, rescoring re-tuned on valid on session 48's grid.
#   bash recipes/speechocean762/runs/s49/penalty.sh [STAGE]   (train package tune)
. "$(dirname "$0")/../lib.sh"
P=asr/pretrained/default X=exp/s49 R=cp1 LEXICON=$PWD/../shared/data/speechocean762/resource/lexicon.txt
mkdir -p $X
case ${1:-train} in
train)
  [ -e $X/$R/best ] || OMP_NUM_THREADS=2 asr train $P/config.yaml train.train_manifest=data/so762/train.jsonl \
      train.valid_manifest=data/so762/valid.jsonl train.epochs=5 train.threads=2 train.progress=false \
      train.init_from=$P train.phone_lexicon=$LEXICON,cmudict train.confidence_penalty=0.1 \
      train.output_dir=$X/$R > $X/$R.log 2>&1 ;;
package)
  python recipes/speechocean762/runs/s49/first_pkg.py $P $X/pkg_$R $X/$R/best
  OMP_NUM_THREADS=2 asr priors $X/pkg_$R data/so762/train.jsonl ;;
tune)
  tune_package $X/pkg_$R $X/pkg_$R.tune.log ;;
esac
