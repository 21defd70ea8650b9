#!/bin/bash
# Session 49: the first system's own search (its decoding.yaml: LM weight, word score, blank penalty,
# prior scale) re-tuned on valid in a package made by first_pkg.py, on session 48's 250-point grid
# around the built-in package's, before its rescoring is re-tuned.
#   bash recipes/speechocean762/runs/s49/lmtune_first.sh PACKAGE
. "$(dirname "$0")/../lib.sh"
lmtune_search $1 $1/lm.bin $1/lexicon.txt $1.lmtune.log
