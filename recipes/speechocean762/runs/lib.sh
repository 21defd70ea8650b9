# Shared by the session scripts under runs/: sourced first (`. "$(dirname "$0")/../lib.sh"`), it
# moves to the repository root and into its virtual environment, and gives the steps each
# experiment repeats on the built-in package, with session 48's grids.
set -e
cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)" && . .venv/bin/activate

# lmtune_search MODEL LM LEXICON LOG [LM_WEIGHTS]: a system's own search (LM weight, word score,
# blank penalty, prior scale) tuned on valid on the 250-point grid around the package's, into
# MODEL/decoding.yaml
lmtune_search() {
  asr lm tune data/so762/valid.jsonl --model $1 --lm $2 --lexicon $3 \
      --lm-weights=${5:-2,2.5,3,3.5,4} --word-scores=-3,-2,-1,0,1 --blank-penalties=0,0.5,1,1.5,2 \
      --prior-scales=0.3,0.45 --beam-size 100 --beam-size-token 30 --decode-workers 2 > $4 2>&1
}

# tune_package PACKAGE LOG: the four-system package's rescoring re-tuned on valid (11,250 points),
# into PACKAGE/rescoring.yaml
tune_package() {
  asr tune-rescoring data/so762/valid.jsonl --model $1 --combine $1/system2 $1/system3 $1/system4 \
      --rnnlm $1/rnnlm --prior-scales=0,0.3,0.45 --weights=0,0.25,0.5,1,1.5 -o $1/rescoring.yaml \
      --decode-workers 2 > $2 2>&1
}

# score SPLIT MODEL REPORT LOG [OPTION ...]: data/so762/SPLIT.jsonl scored on one thread, with a report
score() {
  local split=$1 model=$2 report=$3 log=$4
  shift 4
  OMP_NUM_THREADS=1 asr evaluate data/so762/$split.jsonl --model $model "$@" --decode-workers 1 --json \
      --report $report --force > $log 2>&1
}

# score_dev MODEL REPORT LOG [OPTION ...]: dev scored, after the choice on valid
score_dev() {
  score test "$@"
}

# repackage BASE PACKAGE DIR RUN:SYSTEM ...: PACKAGE a copy of the four-system package BASE with each
# DIR/RUN/best in float16 as its SYSTEM (. for the first), each with its own token priors and its search
# tuned on the 250-point grid; then the rescoring re-tuned (logs in DIR)
repackage() {
  local base=$1 pkg=$2 dir=$3 rn run system
  shift 3
  rm -rf $pkg && cp -r $base $pkg
  for rn in "$@"; do
    run=${rn%:*} system=$pkg/${rn#*:}
    rm -rf $dir/${run}_half && asr export $dir/$run/best $dir/${run}_half --half >> $dir/export.log 2>&1
    cp $dir/${run}_half/model.safetensors $system/model.safetensors
    OMP_NUM_THREADS=2 asr priors $system data/so762/train.jsonl > $dir/priors_$run.log 2>&1
    lmtune_search $system $pkg/lm.bin $system/lexicon.txt $dir/lmtune_$run.log
  done
  tune_package $pkg $dir/rescore_${pkg##*/pkg_}.log  # pkg_swa: rescore_swa.log
}

# builtin_make PACKAGE_DIR LOG: the built-in package's `make` (F4's command) over session 50's trained
# systems (EXP=exp/s50/XWC), two one-thread jobs; again with the same arguments, it resumes
builtin_make() {
  make -j2 -C recipes/speechocean762 package PHONE_SEEDS="7 42 3" RESCORING_WEIGHTS=0,0.25,0.5,1,1.5 \
      DATA=$PWD/data/so762 EXP=$PWD/exp/s50/XWC PACKAGE_DIR=$1 \
      EXTRA_OVERRIDES="train.threads=1 train.progress=false" >> $2 2>&1
}

# builtin_make_stage STAGE DIR: the stages of a session's make.sh: `package` (builtin_make into
# DIR/pkg_make), `dev` (that package scored on dev, then compared with the built-in's report)
builtin_make_stage() {
  local dir=$2
  mkdir -p $dir
  case $1 in
  package)
    builtin_make $dir/pkg_make $dir/make.log ;;
  dev)
    score_dev $dir/pkg_make $dir/rep_dev_make $dir/eval_dev_make.log
    asr compare exp/s49/rep_dev_builtin $dir/rep_dev_make > $dir/compare_dev_make.txt 2>&1 ;;
  *)
    echo "stage: package or dev" >&2; return 2 ;;
  esac
}
