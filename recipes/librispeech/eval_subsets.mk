# The LibriSpeech recipes' scored-only subsets (SEPARATE_SETS: EVAL_SUBSETS less the valid set),
# each a stage of its own, $(DATA)/SUBSET.jsonl with stamp $(DATA)/.args/SUBSET. Training never
# reads them: written with train.jsonl, another EVAL_SUBSETS would rewrite it and so retrain. Now
# another EVAL_SUBSETS prepares and scores the new subsets alone, and one left out redoes nothing.
# Included after ../common.mk (args_stamp); the recipe sets SEPARATE_SETS before it.
#
# Each is prepared alone (asr prepare librispeech --train --eval SUBSET: no train subset, so
# train.jsonl and valid.jsonl are not written), and the manifest is kept only if it changed
# (../common.mk's prepare_separately).

# One subset both trained on and scored would score training data (asr prepare refused it when it
# prepared them together).
$(if $(filter $(TRAIN_SUBSETS),$(EVAL_SUBSETS)),$(error $(filter $(TRAIN_SUBSETS),$(EVAL_SUBSETS)): in both \
  TRAIN_SUBSETS and EVAL_SUBSETS; give each subset once))

prepare: $(foreach set,$(SEPARATE_SETS),$(DATA)/$(set).jsonl)

$(foreach set,$(SEPARATE_SETS),$(DATA)/$(set).jsonl): $(DATA)/%.jsonl: | download
	$(call prepare_separately,$*,$(ASR) prepare librispeech "$(CORPUS_DIR)" "$$tmp" --train --eval $*)

# A subset's stamp holds where it is read from. A manifest without one (the old recipe's single
# prepare wrote them all, or this subset was the valid set then) is prepared again, never taken as
# made from this CORPUS_DIR: it may be another corpus's. cmp keeps an identical one, times and all,
# so its scores are not redone.
$(foreach set,$(SEPARATE_SETS),$(eval EVAL_PREPARE_ARGS.$(set) = librispeech "$$(CORPUS_DIR)" $(set))\
  $(eval $(call args_stamp,$(set),$(DATA)/.args/$(set),$(DATA)/$(set).jsonl,EVAL_PREPARE_ARGS.$(set),,unadopted)))
