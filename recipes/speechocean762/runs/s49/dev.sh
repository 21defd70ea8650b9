#!/bin/bash
# Session 49: dev scores of the packages of aux.sh and penalty.sh (made after the choice on valid):
# each package as it rescores, and the control's and the penalty's first systems alone, with the LM
# and greedy. Two at a time, one thread each.
#   bash recipes/speechocean762/runs/s49/dev.sh
. "$(dirname "$0")/../lib.sh"
X=exp/s49
ev() {  # arm, decoder (auto: the package's rescoring)
  local name=$1$([ $2 = auto ] || echo _$2)
  score_dev $X/pkg_$1 $X/rep_dev_$name $X/eval_dev_$name.log --decoder $2
}
ev ctl1 auto & ev ft1 auto & wait
ev cp1 auto
ev ctl1 beam & ev cp1 beam & wait
ev ctl1 greedy & ev cp1 greedy & wait
# the built-in package, for asr compare: OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --decode-workers 1 \
#     --json --report exp/s49/rep_dev_builtin --force
