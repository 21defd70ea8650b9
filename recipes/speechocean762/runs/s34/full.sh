#!/bin/bash
# The built-in package's recipe, end to end, as the Makefile documents it (make package PHONE_SEEDS="7 42"),
# into its own DATA/EXP/PACKAGE_DIR (the built-in package stays as it is). Two jobs, one thread each.
# Rerun the same command to resume (training resumes from EXP/last; a killed stage redoes itself).
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
R=$PWD
date -u
time make -j2 -C recipes/speechocean762 package PHONE_SEEDS="7 42" DATA=$R/data/full EXP=$R/exp/full \
  PACKAGE_DIR=$R/exp/full_pkg EXTRA_OVERRIDES="train.threads=1"
date -u
time .venv/bin/asr evaluate data/full/test.jsonl --model exp/full_pkg --json -o exp/full/test_pkg_hyp.txt --report exp/full/test_pkg_report --force
date -u
