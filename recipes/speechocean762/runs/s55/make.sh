#!/usr/bin/env bash
# Session 55: the built-in package's recipe as `make` runs it at this commit, after runs FA and SW changed
# its fine-tuning. Session 51's command again (runs/s51/head.sh package), into exp/s55/pkg_make: over
# session 50's trained systems (EXP=exp/s50/XWC), make redoes only what the new FINETUNE_OVERRIDES
# touch: the four fine-tunings, their priors and tuning (840-point grids), and the package's rescoring.
# Two jobs, one thread each; run the same stage again to resume (a killed fine-tuning resumes, a tuning
# grid goes on from the points it kept).
# The rule, session 51's, set before any result: the package replaces the built-in one (valid 47.58%) if
# its re-tuned valid WER is no higher; else the built-in stays. Dev is scored after that choice, only to
# report it.
#   bash recipes/speechocean762/runs/s55/make.sh STAGE   (package dev)
. "$(dirname "$0")/../lib.sh"
builtin_make_stage "${1:?stage: package dev}" $PWD/exp/s55
