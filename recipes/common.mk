# Stages shared by the corpus recipes. Each recipe's Makefile includes ../vars.mk, sets its variables (DATA and
# EXP before any rule, CONFIG, VALID, EVAL_SETS), its own `download` and `prepare` stages
# (prepare makes $(DATA)/train.jsonl), then includes this file.
#
#   train     -> $(EXP)/train.done   (a killed run resumes from $(EXP)/last on the next `make`)
#   evaluate  -> $(EXP)/SET.json for each SET in $(EVAL_SETS) ($(DATA)/SET.jsonl), with
#                $(EXP)/SET_hyp.txt (REF/HYP per utterance) and $(EXP)/SET.log
#
# Stages are files: each runs only when its inputs changed; delete an output to redo it.

# bash with pipefail, so that a failing `asr evaluate | tee` fails its stage.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c


.PHONY: all download prepare train evaluate

train: $(EXP)/train.done

$(EXP)/train.done: $(DATA)/train.jsonl
	$(ASR) train $(CONFIG) train.train_manifest=$(DATA)/train.jsonl \
	  $(if $(VALID),train.valid_manifest=$(DATA)/$(VALID).jsonl) train.output_dir=$(EXP) $(OVERRIDES) \
	  $(if $(filter-out 1,$(GPUS)),--gpus $(GPUS)) $(if $(wildcard $(EXP)/last/train_state.pt),--resume)
	touch $@

evaluate: $(foreach set,$(EVAL_SETS),$(EXP)/$(set).json)

$(EXP)/%.json: $(EXP)/train.done
	$(ASR) evaluate $(DATA)/$*.jsonl --model $(EXP)/best --json -o $(EXP)/$*_hyp.txt | tee $(EXP)/$*.log
	tail -n 1 $(EXP)/$*.log > $@
