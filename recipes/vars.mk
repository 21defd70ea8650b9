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
