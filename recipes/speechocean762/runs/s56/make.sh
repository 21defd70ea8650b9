#!/usr/bin/env bash
# Session 56: the built-in package's recipe as `make` runs it after run SW10 (10 fine-tuning epochs,
# all averaged). runs/s55/make.sh's command again, into exp/s56/pkg_make: over session 50's trained
# systems (EXP=exp/s50/XWC) make redoes only what the new FINETUNE_EPOCHS and FINETUNE_OVERRIDES
# touch: the four fine-tunings (SW's go to each finetune/replaced/), their priors and tuning (840-point
# grids), and the package's rescoring. Two jobs, one thread each; run the same stage again to resume
# (a killed fine-tuning resumes, a tuning grid goes on from the points it kept).
# The rule, session 51's, set before any result: the package replaces the built-in one (valid 47.58%)
# if its re-tuned valid WER is no higher; else the built-in stays. Dev is scored after that choice,
# only to report it.
#   bash recipes/speechocean762/runs/s56/make.sh STAGE   (package dev)
. "$(dirname "$0")/../lib.sh"
builtin_make_stage "${1:?stage: package dev}" $PWD/exp/s56
