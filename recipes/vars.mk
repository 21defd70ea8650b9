# Defaults shared by every recipe, all `?=`: a recipe sets its own before including this file
# (a `?=` after it would be ignored), and the command line overrides either. ROOT is the repository (recipes run with make -C recipes/NAME).
ROOT := $(abspath ../..)
# The checkout's path may hold spaces: ROOT names no file make must track, only commands and the files
# they read, and commands get it quoted ("$(CONFIG)", "$(PACKAGE_DIR)"), or in ASR and PYTHON, which
# may carry arguments (ASR="python -m asr.cli"), with its spaces escaped.
ROOT_SH := $(subst $() ,\ ,$(ROOT))
ASR ?= $(ROOT_SH)/.venv/bin/asr
PYTHON ?= $(ROOT_SH)/.venv/bin/python
DATA ?= data
EXP ?= exp/small
# A trailing slash (as a shell's completion leaves it) names the same folder: dropped, or it would
# change the stages' arguments and redo them, training included. $(call no_trailing_slash,PATH): a
# path that may hold spaces keeps a run of them (make's word functions, patsubst's too, would fold it
# into one). Marked by a line end, which no path holds.
no_trailing_slash = $(subst $(newline),,$(subst /$(newline),$(newline),$(1)$(newline)))
define newline


endef
override DATA := $(call no_trailing_slash,$(DATA))
override EXP := $(call no_trailing_slash,$(EXP))
CONFIG ?= $(ROOT)/configs/small.yaml
OVERRIDES ?=
# Added to OVERRIDES, which a recipe may set (the command line's OVERRIDES replaces the recipe's):
# EXTRA_OVERRIDES="train.units=bpe" keeps the recipe's settings and adds one. Training and
# fine-tuning both get it.
EXTRA_OVERRIDES ?=
GPUS ?= 1
CORPUS_DIR ?= corpus
override CORPUS_DIR := $(call no_trailing_slash,$(CORPUS_DIR))
URL_BASE ?=
LM_ORDER ?= 4
# 0.5-4: with a blank penalty the best LM weight rises (3 to 3.5 on speechocean762, where no
# model has tuned below 1.5).
LM_WEIGHTS ?= 0.5,1,1.5,2,2.5,3,3.5,4
WORD_SCORES ?= -3,-2,-1,0,1,2,3
# The beam the weights are tuned at, stored in decoding.yaml and so used by evaluate and the
# package. On speechocean762 100 beat torchaudio's usual 50 by 1 point on valid (0.7 on dev)
# for 20% more decoding time; 200 gained nothing more (recipes/speechocean762/README.md).
BEAM_SIZE ?= 100
# Tokens tried per frame, the likeliest first (stored with the weights). A character model has
# fewer than 30, so this changes nothing for it; a subword model's 151 tokens made the search
# 1.85x slower than a character model's, and 30 of them gave the same valid WER and weights,
# tuning in 409 s instead of 1,065 s (recipes/speechocean762/README.md).
BEAM_SIZE_TOKEN ?= 30
# Blank penalties tried with each LM weight and word score (asr lm tune --blank-penalties): on
# speechocean762, 1.5 took valid WER from 59.0% to 57.4% and dev from 53.9% to 52.7%
# (recipes/speechocean762/README.md). 280 grid points: ~10 min on one core at beam 100.
BLANK_PENALTIES ?= 0,0.5,1,1.5,2
# Prior scales tried too (asr lm tune --prior-scales), and by the rescoring (asr tune-rescoring
# --prior-scales): anything but 0 makes the tune stage estimate the model's token priors on
# $(DATA)/train.jsonl first (asr priors). Off here; speechocean762 turns it on (0,0.3,0.45: dev
# 41.9% -> 39.4% for its package, recipes/speechocean762/README.md). Every system that rescores
# (COMBINE too) then needs its token_priors.json.
PRIOR_SCALES ?= 0
# The rescoring's weights grid for each system after the first (asr tune-rescoring --weights;
# empty: its default, 0.25,0.5,1,1.5). With a 0 in it the tuning can drop a system: on
# speechocean762 a third phone seed then reached valid 47.83% against three systems' 48.57%, and
# its one make became the built-in package (recipes/speechocean762/README.md, run F4).
RESCORING_WEIGHTS ?=
RESCORING_GRID = $(if $(strip $(RESCORING_WEIGHTS)),--weights=$(RESCORING_WEIGHTS))
LM = $(EXP)/lm/words_$(LM_ORDER)gram.arpa
# ARPA LMs mixed in as further components of the LM (each weighted by the valid transcripts, as
# LM_TEXTS's LM is), e.g. a generic English LM; a recipe may give a rule that makes them.
LM_ARPAS ?=
# Synthetic speech mixed into training (asr synthesize; needs flite/espeak-ng): 0 = none.
TTS_SENTENCES ?= 0
TTS_TEXTS ?= $(LM_TEXTS)
# More `asr synthesize` options, e.g. TTS_OPTIONS="--freq-scale 1,1.3" (child-like voices). The
# synthetic audio lands in $(DATA)/ttsN whatever the options (other options synthesize it again):
# give another DATA to keep both.
TTS_OPTIONS ?=
# Fine-tuning on the real audio alone after training (FINETUNE_EPOCHS > 0): a short run from
# $(EXP)/best into $(EXP)/finetune, which is then the model tuned, evaluated and packaged.
# Its model is the average of its last 10 epochs (all, if fewer), not the epoch valid ranks first: on
# speechocean762 the average did better with the LM, where 120 valid utterances ranked epochs by luck
# (speechocean762/README.md, run FA); and its rate stays at train.lr after warmup, so the averaged
# epochs lie further apart (stochastic weight averaging, Izmailov et al. 2018; run SW; 10 epochs
# averaged rather than 5 since run SW10).
FINETUNE_EPOCHS ?= 0
FINETUNE_OVERRIDES ?= train.lr=3e-4 train.warmup_steps=50 train.final_lr_fraction=1 train.average_last=10 train.keep_average=true
# $(call model_exp,RUN_DIR): the model a run tunes, evaluates and packages (its fine-tuned one, if any).
model_exp = $(if $(filter-out 0,$(FINETUNE_EPOCHS)),$(1)/finetune,$(1))
MODEL_EXP = $(call model_exp,$(EXP))
TRAIN_MANIFEST = $(if $(filter-out 0,$(TTS_SENTENCES)),$(DATA)/train_tts$(TTS_SENTENCES).jsonl,$(DATA)/train.jsonl)
# The sets of EVAL_SETS a recipe prepares by a rule of their own, apart from train.jsonl (own_data's
# test set, from TEST_SRC): scored again when their manifest changes (common.mk). The others are
# written with train.jsonl.
SEPARATE_SETS ?=
# Model directories the `combine` stage votes with this run's model (ROVER), best first.
COMBINE ?=
# Other random seeds for the same recipe (SEEDS="7 42"): the `seeds` stage trains, tunes and
# packages each into $(EXP)/seedS/package, and `combine` votes them too.
SEEDS ?=
# The same recipe with phone units (train.units=phone) and these seeds (PHONE_SEEDS="7"): packaged
# into $(EXP)/phonesS/package like SEEDS, for `combine` and `rescore`. On speechocean762 a phone
# model rescoring the default's n-best took dev WER from 49.8% to 46.9% (recipes/speechocean762/README.md).
PHONE_SEEDS ?=
# Overrides for the phone-unit runs alone, after theirs (e.g. cmudict-first spellings: recipes/speechocean762/Makefile).
PHONE_OVERRIDES ?=
# A recurrent word LM (asr lm rnn) for the rescore and package stages (RNNLM=1): an LSTM trained on
# the train transcripts, seen RNNLM_REPEAT times an epoch, and LM_TEXTS once, into $(EXP)/lm/rnnlm;
# rescoring interpolates it with the n-gram at the share with the lowest valid perplexity. On
# speechocean762 it took valid perplexity from 90 to 68 (recipes/speechocean762/README.md).
RNNLM ?= 0
RNNLM_REPEAT ?= 10
# More `asr lm rnn` options, e.g. RNNLM_OPTIONS="--hidden-size 512 --halvings 0".
RNNLM_OPTIONS ?=
RNNLM_DIR = $(EXP)/lm/rnnlm
# Where `make package` installs the run's model: the built-in default.
PACKAGE_DIR ?= $(ROOT)/asr/pretrained/default
# With a trailing slash, its "$(PACKAGE_DIR).tmp" (common.mk) would lie inside it and be removed with
# the old package.
override PACKAGE_DIR := $(call no_trailing_slash,$(PACKAGE_DIR))
