#!/bin/bash
# Session 51: the built-in package's recipe as `make` runs it at this commit (its synthetic sentences as
# `asr synthesize` selects them since 62ba3a0), into exp/s51/pkg; the built-in package stays as it is.
# Its first system is session 50's control run XWC (the recipe's `make finetune` at a59b39c with the
# same EXP and arguments, so make does not train it again); the three phone seeds, the LSTM LM, each
# system's tuning and the package's rescoring are trained and tuned here. Two jobs, one thread each;
# run the same stage again to resume.
# The rule, set before any result: the package replaces the built-in one (valid 47.58%, made by `make`
# at 01d1a12) if its re-tuned valid WER is no higher, the rule the built-in itself met (README.md,
# run F4); else the built-in stays, and 01d1a12 remains the commit whose `make` reproduces it. Dev is
# scored after that choice, only to report it.
#   bash recipes/speechocean762/runs/s51/head.sh STAGE   (package dev valid)
. "$(dirname "$0")/../lib.sh"
X=$PWD/exp/s51
mkdir -p $X
case $1 in
package)
  make -j2 -C recipes/speechocean762 package PHONE_SEEDS="7 42 3" RESCORING_WEIGHTS=0,0.25,0.5,1,1.5 \
      DATA=$PWD/data/so762 EXP=$PWD/exp/s50/XWC PACKAGE_DIR=$X/pkg \
      EXTRA_OVERRIDES="train.threads=1 train.progress=false" >> $X/full.log 2>&1 ;;
dev)  # after the choice on valid: the package as it rescores, against the built-in's report on the same files
      # (exp/s49/rep_dev_builtin: the built-in package scored on dev by runs/s49/dev.sh)
  score_dev $X/pkg $X/rep_dev_pkg $X/eval_dev_pkg.log
  asr compare exp/s49/rep_dev_builtin $X/rep_dev_pkg > $X/compare_dev.txt 2>&1 ;;
valid)  # (session 53) how far apart the two are on valid, by speaker: the built-in's report beside the package's
  OMP_NUM_THREADS=1 asr evaluate data/so762/valid.jsonl --model asr/pretrained/default --decode-workers 1 --json \
      --report $X/rep_valid_builtin --force > $X/eval_valid_builtin.log 2>&1 &
  OMP_NUM_THREADS=1 asr evaluate data/so762/valid.jsonl --model $X/pkg --decode-workers 1 --json \
      --report $X/rep_valid_pkg --force > $X/eval_valid_pkg.log 2>&1
  wait
  asr compare $X/rep_valid_builtin $X/rep_valid_pkg > $X/compare_valid.txt 2>&1 ;;
esac
