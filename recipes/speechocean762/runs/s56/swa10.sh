#!/usr/bin/env bash
# Run SW10: stochastic weight averaging over twice as many fine-tuning epochs. Run SW (session 55)
# averaged the 5 epochs of a constant-rate fine-tuning; averaging more points of that walk should
# reduce the variance of the average further (Izmailov et al., 2018, average over many epochs). Here
# the same four fine-tunings run 10 epochs and keep the average of all 10. One setting, not tuned.
#   train: SW's four fine-tunings (exp/s50/XWC's finetune configs: XWC and phone seeds 7, 42, 3) with
#          train.epochs=10 train.average_last=10, two at a time on one thread each
#   pkg:   a copy of SW's package exp/s55/pkg_swa with the four averages in float16, each with its own
#          token priors and the same 250-point grid; then its rescoring re-tuned on valid (SW's steps)
#   dev:   scored after the rule's choice, only to report
# The rule, set before any result (committed with this line): the recipe's fine-tuning becomes 10 epochs
# averaged (FINETUNE_EPOCHS=10, train.average_last=10) if pkg_swa10's re-tuned valid WER is lower than
# pkg_swa's 47.58%; a tie keeps 5.
. "$(dirname "$0")/../lib.sh"
O=exp/s56
mkdir -p $O
finetune() {  # finetune NAME CONFIG: one 10-epoch fine-tuning into exp/s56/NAME
  asr train $2 train.output_dir=$PWD/$O/$1 train.epochs=10 train.average_last=10 train.progress=false \
      > $O/$1.log 2>&1
}
case ${1:?stage: train pkg dev alone} in
train)
  finetune XWCswa10 exp/s50/XWC/finetune/config.yaml &
  finetune phones7swa10 exp/s50/XWC/phones7/finetune/config.yaml
  wait
  finetune phones3swa10 exp/s50/XWC/phones3/finetune/config.yaml &
  finetune phones42swa10 exp/s50/XWC/phones42/finetune/config.yaml
  wait ;;
pkg)
  repackage exp/s55/pkg_swa $O/pkg_swa10 $O XWCswa10:. phones7swa10:system2 phones42swa10:system3 \
      phones3swa10:system4 ;;
dev)
  score_dev $O/pkg_swa10 $O/rep_dev_swa10 $O/eval_dev_swa10.log
  asr compare exp/s55/rep_dev_swa $O/rep_dev_swa10 > $O/compare_dev_swa10.txt 2>&1
  asr compare exp/s49/rep_dev_builtin $O/rep_dev_swa10 > $O/compare_dev_swa10_builtin.txt 2>&1 ;;
alone)  # (added after pkg: valid 47.33% against 47.58%, adopted) the first system alone on dev, greedy and
        # with the LM (its own tuned search), against SW's (run SW's stage of the same name); both at once
  for D in greedy beam; do
    (score_dev $O/pkg_swa10 $O/rep_dev_${D}_swa10 $O/eval_dev_${D}_swa10.log --decoder $D
     asr compare exp/s55/rep_dev_${D}_swa $O/rep_dev_${D}_swa10 > $O/compare_dev_$D.txt 2>&1) &
  done
  wait ;;
esac
