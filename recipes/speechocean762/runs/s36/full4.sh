#!/bin/bash
# A third phone seed (3) beside exp/full's finished systems, with a rescoring weights grid that may drop a system
# (RESCORING_WEIGHTS=0,0.25,0.5,1,1.5), packaged into its own PACKAGE_DIR; the built-in package stays as it is.
# Only exp/full/phones3 trains; the rest is reused. Rerun to resume.
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
R=$PWD
date -u
time make -j2 -C recipes/speechocean762 package PHONE_SEEDS="7 42 3" RESCORING_WEIGHTS=0,0.25,0.5,1,1.5 \
  DATA=$R/data/full EXP=$R/exp/full PACKAGE_DIR=$R/exp/full_pkg4 EXTRA_OVERRIDES="train.threads=1"
date -u
time .venv/bin/asr evaluate data/full/test.jsonl --model exp/full_pkg4 --json -o exp/s36/test_pkg4_hyp.txt --report exp/s36/test_pkg4_report --force
date -u
