# Defaults shared by every recipe; included first, so a recipe or the command line can
# override any of them. ROOT is the repository (recipes run with make -C recipes/NAME).
ROOT := $(abspath ../..)
ASR ?= $(ROOT)/.venv/bin/asr
DATA ?= data
EXP ?= exp/small
CONFIG ?= $(ROOT)/configs/small.yaml
OVERRIDES ?=
GPUS ?= 1
CORPUS_DIR ?= corpus
URL_BASE ?=
LM_ORDER ?= 4
LM_WEIGHTS ?= 0,0.25,0.5,0.75,1,1.5,2,3
WORD_SCORES ?= -3,-2,-1,0,1,2,3
LM = $(EXP)/lm/words_$(LM_ORDER)gram.arpa
# Synthetic speech mixed into training (asr synthesize; needs flite/espeak-ng): 0 = none.
TTS_SENTENCES ?= 0
TTS_TEXTS ?= $(LM_TEXTS)
TRAIN_MANIFEST = $(if $(filter-out 0,$(TTS_SENTENCES)),$(DATA)/train_tts$(TTS_SENTENCES).jsonl,$(DATA)/train.jsonl)
