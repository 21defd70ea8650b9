#!/bin/bash
# Session 49: the confidence penalty again, on a phone system: the built-in package's system2 fine-tuned
# 5 epochs on its own (corpus-first) spellings, with train.confidence_penalty=0.1 (s2cp) and without
# (s2ctl); each packaged as session 48's respell_pkg.py does, priors redone, its search tuned on valid
# on session 48's grid, then scored alone on dev.
#   bash recipes/speechocean762/runs/s49/phone_penalty.sh [STAGE]   (train package lmtune eval)
set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
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
    asr lm tune data/so762/valid.jsonl --model $X/pkg_$r/system2 --lm $X/pkg_$r/lm.bin \
        --lexicon $X/pkg_$r/system2/lexicon.txt --lm-weights=2,2.5,3,3.5,4 --word-scores=-3,-2,-1,0,1 \
        --blank-penalties=0,0.5,1,1.5,2 --prior-scales=0.3,0.45 --beam-size 100 --beam-size-token 30 \
        --decode-workers 2 > $X/pkg_$r.lmtune.log 2>&1
  done ;;
eval)
  for r in s2ctl s2cp; do
    OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --model $X/pkg_$r/system2 --decode-workers 1 --json \
        --report $X/rep_dev_$r --force > $X/eval_dev_$r.log 2>&1 &
  done
  wait ;;
esac
