# Stages shared by the corpus recipes. Each recipe's Makefile includes ../vars.mk, sets its variables (DATA and
# EXP before any rule, CONFIG, VALID, EVAL_SETS), its own `download` and `prepare` stages
# (prepare makes $(DATA)/train.jsonl), then includes this file.
#
#   synth     -> $(DATA)/ttsN/ (TTS_SENTENCES=N > 0: N sentences of $(TTS_TEXTS) read by TTS voices),
#                mixed with $(DATA)/train.jsonl into $(DATA)/train_ttsN.jsonl for training
#   train     -> $(EXP)/train.done   (a killed run resumes from $(EXP)/last on the next `make`)
#   finetune  -> $(EXP)/finetune/train.done (FINETUNE_EPOCHS > 0): $(EXP)/best trained further on
#                $(DATA)/train.jsonl alone; MODEL_EXP, the run tuned and evaluated below, is then
#                $(EXP)/finetune, else $(EXP)
#   lm        -> $(EXP)/lm/words_$(LM_ORDER)gram.arpa: the train transcripts' LM, mixed with one
#                of $(LM_TEXTS) (if given) and the ARPA files in $(LM_ARPAS) (if given) at the
#                weights that fit the valid transcripts best
#   tune      -> $(MODEL_EXP)/best/decoding.yaml: LM weight, word score and blank penalty tuned on
#                $(VALID) at BEAM_SIZE
#   evaluate  -> $(MODEL_EXP)/SET.json (greedy) and $(MODEL_EXP)/SET_lm.json (beam search + LM) for each SET
#                in $(EVAL_SETS) ($(DATA)/SET.jsonl), with SET_hyp.txt / SET_lm_hyp.txt (REF/HYP
#                per utterance) and the logs
#   combine   -> $(MODEL_EXP)/combined/SET.json per SET: ROVER of this run's model (with the LM) and
#                the model directories in COMBINE (e.g. other runs packaged with their LMs by
#                `asr export RUN/best PKG --lm LM`; one without a packaged LM decodes greedy), with
#                SET_hyp.txt and an error report SET_report/
#   seeds     -> $(EXP)/seedS/package for each S in SEEDS: the whole recipe again (train, finetune,
#                tune, with this run's LM) with train.seed=S, packaged with the LM; `combine` and
#                `rescore` add them
#   phones    -> $(EXP)/phonesS/package for each S in PHONE_SEEDS: the same with phone units too
#   rescore   -> $(MODEL_EXP)/rescored/SET.json per SET: n-best rescoring of this run's model
#                (packaged with the LM as $(MODEL_EXP)/package) and the COMBINE/SEEDS/PHONE_SEEDS
#                systems (none: its own n-best, with RNNLM=1), its weights tuned on $(VALID) (rescoring.yaml), with SET_hyp.txt and SET_report/;
#                with RNNLM=1 the LM is the n-gram interpolated with $(EXP)/lm/rnnlm (asr lm rnn)
#   package   -> $(PACKAGE_DIR) (the built-in model), $(MODEL_EXP)/package.done: this run's model and
#                its LM; with other systems (COMBINE/SEEDS/PHONE_SEEDS) or RNNLM=1, one package that
#                rescores (with them, with the LSTM LM, or both), re-tuned on $(VALID)
#
# Stages are files: each runs when its input files or its arguments changed (OVERRIDES, EPOCHS,
# CORPUS, LM_ORDER, PRIOR_SCALES, ...: see "Arguments stamps" below), and the stages downstream
# follow; `make` again with the same arguments redoes nothing. A step that fails or is stopped
# leaves no output that make would take for done. A run trained anew in the same EXP replaces the
# old one, whose files (its scores too) are kept in EXP/replaced until the next (give another EXP to
# keep both); a run that never finished an epoch is no such next.

# The arguments stamps (below) are read with $(file <), which came with GNU make 4.2: an older
# make reads every stamp as empty and would redo every stage, training included, at each run.
ifneq ($(filter 3.% 4.0 4.0.% 4.1 4.1.%,$(MAKE_VERSION)),)
$(error GNU make $(MAKE_VERSION) is too old for the recipes: they need GNU make 4.2 or newer)
endif

# bash with pipefail, so that a failing `asr evaluate | tee` fails its stage.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# A failed step's output is removed (a step that writes it first and then fails must not leave it
# for the next make to take as done).
.DELETE_ON_ERROR:

# Paths given to commands are quoted ("$(SRC)"), so a corpus or source path, PACKAGE_DIR and the
# checkout's own path (ROOT, vars.mk) may hold spaces. Make itself cannot name files whose paths have
# spaces, and DATA and EXP name the stages' files.
$(foreach v,DATA EXP,$(if $(word 2,$($(v))),$(error $(v)="$($(v))": make cannot name files in a path with a \
  space; choose a $(v) without one)))
# Training replaces the files of an old run in EXP (asr_train): EXP must name one folder, not the
# root, nothing, or a pattern that make would expand to other folders.
$(foreach v,DATA EXP,$(if $(filter /,$(abspath $(or $($(v)),/))),$(error $(v)="$($(v))": give a folder of its own, not \
  the root or nothing))$(if $(findstring *,$($(v)))$(findstring ?,$($(v)))$(findstring [,$($(v))),$(error \
  $(v)="$($(v))": a path with *, ? or [ is a pattern to make; choose a $(v) without them)))
# Switches are 0 or 1: "true" or "no" was read as on by one test (filter-out 0) and off by another.
$(foreach v,RNNLM GENERIC_LM,$(if $(filter-out 0 1,$(strip $($(v)))),$(error $(v)="$($(v))": give 0 or 1)))
# Seeds are numbers (train.seed): a word would fail in the seed's own make, after this one's stages.
$(foreach s,$(SEEDS) $(PHONE_SEEDS),$(if $(shell test "$(s)" -ge 0 2>/dev/null && echo y),,$(error   SEEDS/PHONE_SEEDS "$(s)": a seed is a whole number)))


.PHONY: all download prepare synth train finetune lm tune evaluate combine rescore seeds phones package

synth: $(TRAIN_MANIFEST)

.PRECIOUS: $(DATA)/tts%/train.jsonl  # an intermediate of train_ttsN.jsonl, but minutes of work

synth_args = $(TTS_TEXTS) $(DATA)/tts$(1) --num $(1) $(TTS_OPTIONS)
SYNTH_ARGS = $(call synth_args,$(TTS_SENTENCES))

$(DATA)/tts%/train.jsonl:
	@test -n "$(TTS_TEXTS)" || { echo "TTS_SENTENCES needs text: set TTS_TEXTS" >&2; exit 1; }
	$(ASR) synthesize $(call synth_args,$*)

$(DATA)/train_tts%.jsonl: $(DATA)/train.jsonl $(DATA)/tts%/train.jsonl
	cat $^ > $@.tmp && mv $@.tmp $@

train: $(EXP)/train.done

# $(call train_args,MANIFEST,RUN_DIR,MORE_OVERRIDES): the arguments of one training run.
train_args = "$(CONFIG)" train.train_manifest=$(1) $(if $(VALID),train.valid_manifest=$(DATA)/$(VALID).jsonl) \
  train.output_dir=$(2) $(OVERRIDES) $(EXTRA_OVERRIDES) $(3)
TRAIN_ARGS = $(call train_args,$(TRAIN_MANIFEST),$(EXP))
# TRAIN_ARGS name the config by its path; what it holds has a stamp of its own, $(EXP)/.args/config:
# a digest of its lines less comments, blank lines and trailing spaces, so an edited config retrains
# and a new comment does not. (Fine-tuning starts from the trained model: it follows by its files.)
CONFIG_TEXT := $(shell sed -e 's/^[[:space:]]*\#.*//' -e 's/[[:space:]][[:space:]]*\#.*//' \
  -e 's/[[:space:]]*$$//' -e '/^$$/d' "$(CONFIG)" 2>/dev/null | sha256sum | cut -c1-16)

# $(call asr_train,ARGS_VARIABLE,RUN_DIR): one training run. A checkpoint saved after the stage's
# inputs and arguments (its prerequisites, the stamp among them) last changed is a killed run's: it
# is resumed. An older one is a finished or other run's: its files are moved into RUN_DIR/replaced
# first (the one there before is removed), so that the run starts anew rather than resume it or be
# refused. Its config and overrides are checked first (asr train --check): a mistyped override
# moves no finished run aside and puts the stage's stamp back as it was (its .prev, with its time),
# so that the next make with the old arguments redoes nothing. (A dry run rewrites no
# stamp: arguments that differ from it rule out resuming. Nor does it remake the prerequisites it
# shows being remade, such as prepare after a touched stamp: make takes them as newer than the target
# ($?) while their files are not. Whether they will change is not known yet; if they do, the run is
# trained anew, as the dry run then shows; if not, nothing after them runs.)
asr_train = $(if $(call current_checkpoint,$(1),$(2)),,$(call remove_old_run,$(2))) $(ASR) train $($(1)) \
  $(if $(filter-out 1,$(GPUS)),--gpus $(GPUS)) $(if $(call current_checkpoint,$(1),$(2)),--resume)
# the arguments stamps among the target's prerequisites ($^); args_of_target: less the config's
stamps_of_target = $(foreach f,$^,$(if $(findstring /.args/,$(f)),$(f)))
args_of_target = $(filter-out %/.args/config,$(stamps_of_target))
# $(call checked_args,ARGS_VARIABLE): the line before asr_train's
checked_args = { $(ASR) train $($(1)) --check || { $(foreach s,$(stamps_of_target),test ! -f $(s).prev \
  || mv -f $(s).prev $(s);) exit 1; }; } && rm -f $(addsuffix .prev,$(stamps_of_target))
current_checkpoint = $(if $(call args_changed,$(args_of_target),$(1))$(call args_changed,$(filter \
  %/.args/config,$(stamps_of_target)),CONFIG_TEXT),,$(shell \
  for f in $^; do test $(2)/last/train_state.pt -nt $$f || exit 1; done && \
  for f in $?; do test $$f -nt $@ || exit 1; done && echo yes))
# What asr train writes in its folder (asr.train_setup.RUN_FILES, and tb/).
TRAIN_RUN_FILES := last best log.jsonl epochs avg tb
# What the stages after it write there: the old model's scores go aside with it, or a set no longer
# scored (valid, once TEST_SRC is given) would sit beside the new model's as if they were its own.
# (A file of one's own there, such as `make ... | tee $(EXP)/make.log`, goes aside with them: keep such
# files outside the run's folder.)
RUN_SCORE_FILES := *.json *.log *_hyp.txt combined rescored package
old_run = $(wildcard $(addprefix $(1)/,$(TRAIN_RUN_FILES) $(RUN_SCORE_FILES)))
# A folder with no model in it (a run killed or failed before its first epoch ended) holds no run to
# keep: what asr train wrote there is removed (the rest stays), and the finished run kept in replaced/
# stays there.
remove_old_run = $(if $(call old_run,$(1)),$(if $(wildcard $(1)/last $(1)/best),rm -rf $(1)/replaced && mkdir \
  $(1)/replaced && mv $(call old_run,$(1)) $(1)/replaced,rm -rf $(wildcard $(addprefix $(1)/,$(TRAIN_RUN_FILES)))) &&)

$(EXP)/train.done: $(TRAIN_MANIFEST)
	$(call checked_args,TRAIN_ARGS)
	$(call asr_train,TRAIN_ARGS,$(EXP))
	touch $@

finetune: $(EXP)/finetune/train.done

# The synthetic speech taught words and spellings; a few epochs on the real audio alone, at a
# low learning rate, then fit the model to the real recordings (selected on valid as before).
FINETUNE_RUN = train.init_from=$(EXP)/best train.epochs=$(FINETUNE_EPOCHS) $(FINETUNE_OVERRIDES)
FINETUNE_ARGS = $(call train_args,$(DATA)/train.jsonl,$(EXP)/finetune,$(FINETUNE_RUN))

$(EXP)/finetune/train.done: $(EXP)/train.done $(DATA)/train.jsonl
	$(call checked_args,FINETUNE_ARGS)
	$(call asr_train,FINETUNE_ARGS,$(EXP)/finetune)
	touch $@

lm: $(LM)

# With LM_TEXTS or LM_ARPAS: an LM of the train transcripts, one of LM_TEXTS and the LM_ARPAS,
# interpolated with the weights that give the lowest perplexity on the valid transcripts (asr lm mix).
# LM_TEXTS come from outside the recipe, as the corpus does, so only their presence counts (after
# the `|`): a fresh copy of the same text (a new machine, a copy without -p) has new times, and by
# times it would rebuild the LMs and re-tune every model downstream, hours of work for nothing.
# Other text (another LM_TEXTS) rebuilds it by its arguments.
LM_MIXED = $(strip $(LM_TEXTS)$(LM_ARPAS))
LM_ARGS = $(DATA)/train.jsonl $(LM_TEXTS) $(LM_ARPAS) --order $(LM_ORDER) \
  $(if $(LM_MIXED),$(if $(VALID),--dev $(DATA)/$(VALID).jsonl))

# The lm stage builds an LM under EXP only. Another (LM=FILE: a seed's run is given its parent run's,
# which the parent makes first; or one of yours) is used as given: no stage of this run rebuilds it
# (the seeds' makes, in parallel, would each make the parent's LM again) or writes beside it.
LM_OURS = $(filter $(abspath $(EXP))/%,$(abspath $(LM)))

ifeq ($(LM_OURS),)
$(LM):
	@echo "LM=$(LM): no such file (an LM outside EXP is used as given; the lm stage makes one under EXP)" >&2; exit 1
else
$(LM): $(DATA)/train.jsonl $(LM_ARPAS) | $(LM_TEXTS)
ifeq ($(LM_MIXED),)
	$(ASR) lm build $(DATA)/train.jsonl -o $@ --order $(LM_ORDER)
else
	$(ASR) lm build $(DATA)/train.jsonl -o $(@D)/train_$(LM_ORDER)gram.arpa --order $(LM_ORDER)
	$(if $(strip $(LM_TEXTS)),$(ASR) lm build $(LM_TEXTS) -o $(@D)/texts_$(LM_ORDER)gram.arpa --order $(LM_ORDER))
	$(ASR) lm mix $(@D)/train_$(LM_ORDER)gram.arpa $(if $(strip $(LM_TEXTS)),$(@D)/texts_$(LM_ORDER)gram.arpa) \
	  $(LM_ARPAS) -o $@ $(if $(VALID),--dev $(DATA)/$(VALID).jsonl)
endif
endif

tune: $(MODEL_EXP)/best/decoding.yaml

TUNE_OPTIONS = --lm-weights=$(LM_WEIGHTS) --word-scores=$(WORD_SCORES) --blank-penalties=$(BLANK_PENALTIES) \
  --prior-scales=$(PRIOR_SCALES) --beam-size $(BEAM_SIZE) $(if $(BEAM_SIZE_TOKEN),--beam-size-token $(BEAM_SIZE_TOKEN))
TUNE_ARGS = $(DATA)/$(VALID).jsonl --model $(MODEL_EXP)/best --lm $(LM) $(TUNE_OPTIONS)

$(MODEL_EXP)/best/decoding.yaml: $(MODEL_EXP)/train.done $(LM)
	@test -n "$(VALID)" || { echo "tuning needs a valid set (VALID)" >&2; exit 1; }
	$(if $(filter-out 0,$(PRIOR_SCALES)),$(ASR) priors $(MODEL_EXP)/best $(DATA)/train.jsonl)
	$(ASR) lm tune $(TUNE_ARGS)

evaluate: $(foreach set,$(EVAL_SETS),$(MODEL_EXP)/$(set).json $(if $(VALID),$(MODEL_EXP)/$(set)_lm.json))

# (A prepare that changes any manifest rewrites them all, train.jsonl last (asr prepare's
# write_splits): a set prepared anew retrains, and so is scored again. A set that a recipe prepares
# by a rule of its own, $(DATA)/SET.jsonl (SEPARATE_SETS, below), is scored again alone.)
$(MODEL_EXP)/%_lm.json: $(MODEL_EXP)/best/decoding.yaml
	$(ASR) evaluate $(DATA)/$*.jsonl --model $(MODEL_EXP)/best --lm $(LM) --json -o $(MODEL_EXP)/$*_lm_hyp.txt \
	  | tee $(MODEL_EXP)/$*_lm.log
	tail -n 1 $(MODEL_EXP)/$*_lm.log > $@.tmp && mv $@.tmp $@

$(MODEL_EXP)/%.json: $(MODEL_EXP)/train.done
	$(ASR) evaluate $(DATA)/$*.jsonl --model $(MODEL_EXP)/best --decoder greedy --json -o $(MODEL_EXP)/$*_hyp.txt \
	  | tee $(MODEL_EXP)/$*.log
	tail -n 1 $(MODEL_EXP)/$*.log > $@.tmp && mv $@.tmp $@

# The sets in SEPARATE_SETS (own_data's test set, the LibriSpeech recipes' scored-only subsets) are
# not written with train.jsonl, which training reads, but by a rule of their own ($(DATA)/SET.jsonl):
# their scores follow their manifest. (One written by train.jsonl's rule as a side effect would not
# do: under make -j its time may be read before that rule rewrites it.)
$(foreach set,$(SEPARATE_SETS),$(eval $(MODEL_EXP)/$(set).json $(MODEL_EXP)/$(set)_lm.json \
  $(MODEL_EXP)/combined/$(set).json $(MODEL_EXP)/rescored/$(set).json: $(DATA)/$(set).jsonl))

# $(call prepare_separately,SET,PREPARE_COMMAND): the recipe of such a set's rule, $(DATA)/SET.jsonl.
# PREPARE_COMMAND writes SET.jsonl into "$$tmp", a folder of this make's own in DATA (another make may
# share DATA; on DATA's disk, mv renames); the manifest is kept only if it changed (its time then
# tells the scores to follow), and the set's stamp, $(DATA)/.args/SET, takes its time.
define prepare_separately
mkdir -p $(DATA) && tmp=$$(mktemp -d "$(DATA)/$(1).XXXXXX") && trap 'rm -rf "$$tmp"' EXIT && \
$(continued)$(2) && \
$(continued){ cmp -s "$$tmp/$(1).jsonl" "$@" || mv "$$tmp/$(1).jsonl" "$@"; }
@touch -c -r $@ $(DATA)/.args/$(1)
endef
# A line break inside one command of a variable's recipe, where a `\` at a line's end (as above) is
# one space: make -n shows the command in lines, as it shows a rule's own recipe.
continued = \$(newline)$(space)$(space)

combine: $(foreach set,$(EVAL_SETS),$(MODEL_EXP)/combined/$(set).json)

SEED_PACKAGES = $(foreach s,$(SEEDS),$(EXP)/seed$(s)/package) $(foreach s,$(PHONE_SEEDS),$(EXP)/phones$(s)/package)
# A package appears whole (it is moved into place), so one of its files stands for it.
SEED_MODELS = $(addsuffix /model.safetensors,$(SEED_PACKAGES))
COMBINE_ARGS = --lm $(LM) --combine $(strip $(COMBINE) $(SEED_PACKAGES))

$(MODEL_EXP)/combined/%.json: $(MODEL_EXP)/best/decoding.yaml $(SEED_MODELS)
	@test -n "$(strip $(COMBINE) $(SEED_PACKAGES))" || { echo "combine needs COMBINE=\"MODEL_DIR ...\" (other systems), SEEDS=\"S ...\" or PHONE_SEEDS=\"S ...\"" >&2; exit 1; }
	mkdir -p $(@D)
	$(ASR) evaluate $(DATA)/$*.jsonl --model $(MODEL_EXP)/best $(COMBINE_ARGS) --json \
	  -o $(@D)/$*_hyp.txt --report $(@D)/$*_report --force | tee $(@D)/$*.log
	tail -n 1 $(@D)/$*.log > $@.tmp && mv $@.tmp $@

rescore: $(foreach set,$(EVAL_SETS),$(MODEL_EXP)/rescored/$(set).json)

# Rescoring takes the first system's word LM from its package.
$(MODEL_EXP)/package/model.safetensors: $(MODEL_EXP)/best/decoding.yaml
	rm -rf $(@D).tmp && $(ASR) export $(MODEL_EXP)/best $(@D).tmp --half --lm $(LM) && rm -rf $(@D) && mv $(@D).tmp $(@D)

RNNLM_MODEL = $(if $(filter-out 0,$(RNNLM)),$(RNNLM_DIR)/model.safetensors)
comma := ,
RNNLM_REPEATS = $(subst $() ,$(comma),$(strip $(RNNLM_REPEAT) $(foreach t,$(LM_TEXTS),1)))

# The recurrent LM: the train transcripts RNNLM_REPEAT times an epoch, LM_TEXTS once, the weights
# with the lowest valid perplexity kept (asr lm rnn's defaults: checked 4 times an epoch, a rise
# halves the rate; RNNLM_OPTIONS changes them).
RNNLM_ARGS = $(DATA)/train.jsonl $(LM_TEXTS) --repeat $(RNNLM_REPEATS) $(if $(VALID),--dev $(DATA)/$(VALID).jsonl) \
  $(RNNLM_OPTIONS)

$(RNNLM_DIR)/model.safetensors: $(DATA)/train.jsonl | $(LM_TEXTS)  # as $(LM)
	rm -rf $(@D).tmp && $(ASR) lm rnn $(RNNLM_ARGS) -o $(@D).tmp && rm -rf $(@D) && mv $(@D).tmp $(@D)

# The systems that rescore with this run's model; with none, RNNLM=1 still rescores the model's own
# n-best with the LSTM LM (RESCORING is empty only when there is nothing to rescore with).
RESCORING_SYSTEMS = $(strip $(COMBINE) $(SEED_PACKAGES))
RESCORING = $(strip $(RESCORING_SYSTEMS) $(RNNLM_MODEL))
RESCORE_ARGS = $(DATA)/$(VALID).jsonl --model $(MODEL_EXP)/package \
  $(if $(RESCORING_SYSTEMS),--combine $(RESCORING_SYSTEMS)) $(if $(RNNLM_MODEL),--rnnlm $(RNNLM_DIR)) \
  --prior-scales=$(PRIOR_SCALES) $(RESCORING_GRID)

$(MODEL_EXP)/rescored/rescoring.yaml: $(MODEL_EXP)/package/model.safetensors $(SEED_MODELS) $(RNNLM_MODEL)
	@test -n "$(RESCORING)" || { echo "rescore needs COMBINE=\"MODEL_DIR ...\" (other systems), SEEDS=\"S ...\", PHONE_SEEDS=\"S ...\" or RNNLM=1" >&2; exit 1; }
	@test -n "$(VALID)" || { echo "rescoring is tuned on a valid set (VALID)" >&2; exit 1; }
	mkdir -p $(@D)
	$(ASR) tune-rescoring $(RESCORE_ARGS) -o $@

$(MODEL_EXP)/rescored/%.json: $(MODEL_EXP)/rescored/rescoring.yaml
	$(ASR) evaluate $(DATA)/$*.jsonl --rescoring $< --json -o $(@D)/$*_hyp.txt --report $(@D)/$*_report --force \
	  | tee $(@D)/$*.log
	tail -n 1 $(@D)/$*.log > $@.tmp && mv $@.tmp $@

seeds phones: $(SEED_MODELS)

# One seed's run is this recipe run again by make itself, in its own EXP, with the seed added to the
# overrides and this run's LM (so every seed is tuned and packaged with the same one). The package
# is written aside and moved into place, so a failed export leaves no half package behind. The
# training manifest comes first: under make -j the sub-makes would otherwise synthesize the same
# $(DATA)/ttsN beside this run and each other. The seeds' runs share this run's arguments (their
# stamp, below): a change to them redoes each seed's `make`, which redoes the stages it touches; so
# does an edited config (this run's config stamp, rewritten then, is a prerequisite).
SEEDS_ARGS = $(TRAIN_ARGS) $(if $(filter-out 0,$(FINETUNE_EPOCHS)),$(FINETUNE_ARGS)) $(TUNE_ARGS) $(if $(PHONE_SEEDS),$(PHONE_OVERRIDES))
# $(call sub_make_value,TEXT): TEXT as one shell word that the seed's make reads back as TEXT, whatever
# quotes it holds (EXTRA_OVERRIDES='"train.phone_lexicon=/my corpus/lexicon.txt"'): single-quoted, as
# the stamps are, with each $ doubled, as that make expands its command line's values again.
sub_make_value = '$(subst $$,$$$$,$(subst ','\'',$(1)))'

$(EXP)/seed%/package/model.safetensors: $(LM) $(TRAIN_MANIFEST) $(EXP)/.args/config
	$(MAKE) tune EXP=$(EXP)/seed$* LM=$(LM) SEEDS= EXTRA_OVERRIDES=$(call sub_make_value,$(EXTRA_OVERRIDES)$(if $(strip $(EXTRA_OVERRIDES)), )train.seed=$*)
	rm -rf $(@D).tmp && $(ASR) export $(call model_exp,$(EXP)/seed$*)/best $(@D).tmp --half --lm $(LM) \
	  && rm -rf $(@D) && mv $(@D).tmp $(@D)

$(EXP)/phones%/package/model.safetensors: $(LM) $(TRAIN_MANIFEST) $(EXP)/.args/config
	$(MAKE) tune EXP=$(EXP)/phones$* LM=$(LM) SEEDS= PHONE_SEEDS= EXTRA_OVERRIDES=$(call sub_make_value,$(EXTRA_OVERRIDES)$(if $(strip $(EXTRA_OVERRIDES)), )train.units=phone train.seed=$*$(if $(strip $(PHONE_OVERRIDES)), $(PHONE_OVERRIDES)))
	rm -rf $(@D).tmp && $(ASR) export $(call model_exp,$(EXP)/phones$*)/best $(@D).tmp --half --lm $(LM) \
	  && rm -rf $(@D) && mv $(@D).tmp $(@D)

# The built-in model: this run's model, or one package that rescores with the other systems and/or
# the LSTM LM (asr export RESCORING_FILE DIR; the others then search with this run's packaged LM, so
# the weights are tuned again on $(VALID)). Built aside and moved into place. The systems' folders are
# split at line ends only (IFS): PACKAGE_DIR may hold spaces.
#
# A stage as the others: $(MODEL_EXP)/package.done (make cannot name PACKAGE_DIR, which may hold a
# space) follows what the export reads (the tuned model or the rescoring file and its systems, the
# LM) and its arguments (PACKAGE_DIR among them). It holds what it installed, the size and time of
# PACKAGE_DIR/model.safetensors: a package replaced since (another run's, the checkout's own
# restored) or removed is installed again. (make -B would retrain everything before it: touch the
# stamp, $(MODEL_EXP)/.args/package, to install it again anew.)
package: $(MODEL_EXP)/package.done

PACKAGE_INPUT = $(if $(RESCORING),$(MODEL_EXP)/rescored/rescoring.yaml $(SEED_MODELS) $(RNNLM_MODEL),\
  $(MODEL_EXP)/best/decoding.yaml $(LM))
# The arguments of its two commands (the rescoring package's folders are its own: the grid and which
# kinds of system it holds suffice).
PACKAGE_ARGS = $(if $(RESCORING),$(MODEL_EXP)/rescored/rescoring.yaml "$(PACKAGE_DIR)" $(DATA)/$(VALID).jsonl \
  $(if $(RESCORING_SYSTEMS),--combine) $(if $(RNNLM_MODEL),--rnnlm) --prior-scales=$(PRIOR_SCALES) $(RESCORING_GRID),\
  $(MODEL_EXP)/best "$(PACKAGE_DIR)" --half --lm $(LM))
# (Python's stat: stat(1)'s options are not the same on macOS.)
package_stat = $(PYTHON) -c 'import os, sys; s = os.stat(sys.argv[1]); print(s.st_size, s.st_mtime_ns)' \
  "$(PACKAGE_DIR)/model.safetensors"
installed_package = $(shell $(package_stat) 2>/dev/null)
# (FORCE is added with the stamps, below, where `differ` is defined.)
package_replaced = $(if $(wildcard $(MODEL_EXP)/package.done),$(call differ,$(strip $(file \
  <$(MODEL_EXP)/package.done)),$(installed_package)))

$(MODEL_EXP)/package.done: $(PACKAGE_INPUT)
ifeq ($(RESCORING),)
	$(ASR) export $(MODEL_EXP)/best "$(PACKAGE_DIR)" --half --lm $(LM) --force
else
	rm -rf "$(PACKAGE_DIR).tmp" && $(ASR) export $(MODEL_EXP)/rescored/rescoring.yaml "$(PACKAGE_DIR).tmp"
	IFS=$$'\n'; $(ASR) tune-rescoring $(DATA)/$(VALID).jsonl --model "$(PACKAGE_DIR).tmp" \
	  $(if $(RESCORING_SYSTEMS),--combine $$(ls -dv "$(PACKAGE_DIR).tmp"/system*)) $(if $(RNNLM_MODEL),--rnnlm "$(PACKAGE_DIR).tmp/rnnlm") \
	  --prior-scales=$(PRIOR_SCALES) $(RESCORING_GRID) -o "$(PACKAGE_DIR).tmp/rescoring.yaml"
	rm -rf "$(PACKAGE_DIR)" && mv "$(PACKAGE_DIR).tmp" "$(PACKAGE_DIR)"
endif
	$(package_stat) > $@.tmp && mv $@.tmp $@

# Arguments stamps. Each stage's arguments (the command line it runs, less the program and how it
# runs: ASR, GPUS, --resume) are kept in a stamp file beside its output, which the output depends
# on. The stamp is rewritten only when they differ from the last run's (with a line saying so), so
# its time moves only then: the stage is redone, and the stages downstream follow by their files.
# Arguments that a stage does not use do not redo it (RNNLM_OPTIONS retrains no acoustic model).
# The checkout's own path is written $(ROOT): a moved checkout redoes nothing.
#
# Arguments are compared word by word: make's word functions, which build them, make each run of
# spaces one, so a change of spacing inside a quoted argument (OVERRIDES="a='x  y'") redoes nothing.
# Telling those spaces from the ones between words needs the shell's parse of the command line at
# every make (which would also expand $VARS and run $(commands) there, under -n too), and would
# change every stamp written so far (every stage redone, training included). Touch the stage's stamp
# (touch EXP/.args/train) to redo it anew.
#
#   stage     stamp                              arguments
#   prepare   $(DATA)/.args/prepare              PREPARE_ARGS (the recipe's: CORPUS, VALID_SPEAKERS, ...)
#   (test)    $(DATA)/.args/test                 own_data's test set, prepared apart: SRC, TEST_SRC
#   (eval)    $(DATA)/.args/SUBSET               each LibriSpeech subset only scored, prepared apart:
#                                                CORPUS_DIR (../librispeech/eval_subsets.mk)
#   synth     $(DATA)/.args/ttsN                 TTS_TEXTS, TTS_OPTIONS
#   train     $(EXP)/.args/train                 CONFIG, TRAIN_MANIFEST, VALID, OVERRIDES, EXTRA_OVERRIDES
#   (config)  $(EXP)/.args/config                what CONFIG holds (a digest: CONFIG_TEXT, above)
#   finetune  $(EXP)/.args/finetune              the same on train.jsonl, FINETUNE_EPOCHS, FINETUNE_OVERRIDES
#   lm        $(EXP)/lm/.args/words_Ngram        LM_ORDER, LM_TEXTS, LM_ARPAS, VALID (none for an LM
#                                                outside EXP, which is used as given)
#   tune      $(MODEL_EXP)/.args/tune            VALID, LM, LM_WEIGHTS, WORD_SCORES, BLANK_PENALTIES,
#                                                PRIOR_SCALES, BEAM_SIZE, BEAM_SIZE_TOKEN
#   combine   $(MODEL_EXP)/.args/combine         LM, COMBINE, SEEDS, PHONE_SEEDS
#   (rnnlm)   $(EXP)/lm/.args/rnnlm              LM_TEXTS, VALID, RNNLM_REPEAT, RNNLM_OPTIONS
#   rescore   $(MODEL_EXP)/.args/rescore         COMBINE, SEEDS, PHONE_SEEDS, RNNLM, PRIOR_SCALES,
#                                                RESCORING_WEIGHTS
#   seeds     $(EXP)/.args/seeds                 train's, finetune's and tune's; PHONE_OVERRIDES
#   package   $(MODEL_EXP)/.args/package         PACKAGE_DIR, LM; with rescoring VALID, PRIOR_SCALES,
#                                                RESCORING_WEIGHTS, whether with systems and RNNLM
#
# evaluate and the seeds' packages have no arguments of their own beyond their input files. A stamp whose
# outputs were made before stamps existed is written at once, with a line saying so and an old time
# (POSIX touch -t): those outputs are taken as made with the arguments given (outside make -n/-q/-t,
# which leave that to the next make). So is a training run killed before then: it is resumed, as it was.
# But for own_data's test set: the old recipe's prepare wrote it with train and valid, from a TEST_SRC
# recorded there, not in $(DATA)/.args/test, so it is prepared again once (kept as it was, times and
# all, if the same: nothing is scored again).
# make -t, which runs no step but touches its targets, writes the stamps it touches (their line is
# marked `+` for it): a touched stamp would keep the last arguments (one made anew none), and the
# next make would redo the stages that -t took as done.

# $(call args_text,VARIABLE): what a stamp holds.
args_text = $(call rooted,$(strip $($(1))))
# $(call rooted,TEXT): TEXT with the checkout's path written $(ROOT) where it is a whole path or one's
# first folders: after the start, a space, a quote, =, a comma, a colon or a semicolon, and before
# the end, a space, a quote, a comma, a colon, a semicolon or / (/work/main2/x and /mnt/work/main/x
# are not in /work/main: a moved checkout's twins would pass for them). Each ROOT in TEXT is marked
# by a tab, those after a boundary then by a newline (stripped text holds neither), and those of
# them before a boundary (or before another ROOT, which begins with /) become $(ROOT); the other
# marks become ROOT again.
rooted = $(strip $(subst $(tab),$(ROOT),$(subst $(newline),$(ROOT),$(call root_ends,$(call root_starts,$(1))))))
root_starts = $(call after_each,$(path_starts),$(tab),$(newline),$(subst $(ROOT),$(tab),$(space)$(1)$(space)))
root_ends = $(call before_each,$(path_ends),$(newline),$$(ROOT),$(1))
path_starts := space quote apostrophe equals comma colon semicolon
path_ends := space quote apostrophe comma colon semicolon slash tab
# $(call after_each,NAMES,A,B,TEXT): TEXT with each CA made CB, for the character C of each variable
# in NAMES; before_each: each AC made BC.
after_each = $(if $(1),$(call after_each,$(call rest_of,$(1)),$(2),$(3),$(call after_one,$(1),$(2),$(3),$(4))),$(4))
after_one = $(subst $(call first_char,$(1))$(2),$(call first_char,$(1))$(3),$(4))
before_each = $(if $(1),$(call before_each,$(call rest_of,$(1)),$(2),$(3),$(call before_one,$(1),$(2),$(3),$(4))),$(4))
before_one = $(subst $(2)$(call first_char,$(1)),$(3)$(call first_char,$(1)),$(4))
rest_of = $(wordlist 2,$(words $(1)),$(1))
first_char = $($(firstword $(1)))
space := $() $()
tab := $(subst ,,	)
quote := "
apostrophe := '
equals := =
colon := :
semicolon := ;
slash := /
# (newline: vars.mk)
# $(call differ,A,B): non-empty when the strings A and B differ. (A file is read stripped: make 4.3's
# $(file <) may keep its last newline.)
differ = $(if $(subst x$(1),,x$(2))$(subst x$(2),,x$(1)),yes)
args_changed = $(if $(wildcard $(1)),$(call differ,$(strip $(file <$(1))),$(call args_text,$(2))))
dry_run := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))$(findstring \
  t,$(firstword -$(MAKEFLAGS)))
# make -t, not with -n (which runs `+` lines too) or -q (which runs none)
touch_run := $(if $(findstring n,$(dry_run))$(findstring q,$(dry_run)),,$(findstring t,$(dry_run)))
# $(call args_adopted,STAGE,STAMP,FILES,ARGS_VARIABLE): non-empty when STAMP is missing and one of
# FILES (the stage's outputs, or a killed run's checkpoint) is there; STAMP is then written.
args_adopted = $(if $(wildcard $(2)),,$(if $(wildcard $(3)),yes$(if $(dry_run),,$(info $(1): \
  $(firstword $(wildcard $(3))) predates arguments stamps: taken as made with these arguments)$(shell \
  mkdir -p $(dir $(2)))$(file >$(2),$(call args_text,$(4)))$(shell touch -t 200001010000 $(2)))))

# $(call args_stamp,STAGE,STAMP,OUTPUTS,ARGS_VARIABLE[,CHECKPOINT[,UNADOPTED]]): OUTPUTS depend on
# STAMP, rewritten (FORCE) only when it holds other arguments. With UNADOPTED (non-empty), a missing
# STAMP is never adopted: the stage runs once (own_data's test set, whose old outputs may be another
# TEST_SRC's).
define args_stamp
$(if $(if $(6),,$(call args_adopted,$(1),$(2),$(3) $(5),$(4))),,$(3): $(2))
$(2): $(if $(call args_changed,$(2),$(4)),FORCE)
	$(if $(call args_changed,$(2),$(4)),@echo "$(1): arguments changed$(comma) redoing")
	$(if $(touch_run),+)@mkdir -p $$(@D) $(if $(5),&& { test ! -f $$@ || cp -p $$@ $$@.prev; }) && printf '%s\n' \
	  '$$(subst ','\'',$$(call args_text,$(4)))' > $$@.tmp && mv $$@.tmp $$@
endef

$(eval $(call args_stamp,prepare,$(DATA)/.args/prepare,$(DATA)/train.jsonl,PREPARE_ARGS))
# Each recipe's prepare ends with this. `asr prepare` leaves manifests it would write unchanged as
# they were, times and all, so nothing after them is redone (make sees that); the stamp then takes
# train.jsonl's time, else make would find train.jsonl older than it and prepare again every time.
prepared = touch -c -r $(DATA)/train.jsonl $(DATA)/.args/prepare
$(if $(filter-out 0,$(TTS_SENTENCES)),$(eval $(call args_stamp,synth,$(DATA)/.args/tts$(TTS_SENTENCES),\
  $(DATA)/tts$(TTS_SENTENCES)/train.jsonl,SYNTH_ARGS)))
$(eval $(call args_stamp,train,$(EXP)/.args/train,$(EXP)/train.done,TRAIN_ARGS,$(EXP)/last/train_state.pt))
$(eval $(call args_stamp,config,$(EXP)/.args/config,$(EXP)/train.done,CONFIG_TEXT,$(EXP)/last/train_state.pt))
$(eval $(call args_stamp,finetune,$(EXP)/.args/finetune,$(EXP)/finetune/train.done,FINETUNE_ARGS,\
  $(EXP)/finetune/last/train_state.pt))
$(if $(LM_OURS),$(eval $(call args_stamp,lm,$(dir $(LM)).args/$(basename $(notdir $(LM))),$(LM),LM_ARGS)))
$(eval $(call args_stamp,tune,$(MODEL_EXP)/.args/tune,$(MODEL_EXP)/best/decoding.yaml,TUNE_ARGS))
$(eval $(call args_stamp,combine,$(MODEL_EXP)/.args/combine,$(foreach set,$(EVAL_SETS),\
  $(MODEL_EXP)/combined/$(set).json),COMBINE_ARGS))
$(eval $(call args_stamp,rnnlm,$(dir $(RNNLM_DIR)).args/rnnlm,$(RNNLM_DIR)/model.safetensors,RNNLM_ARGS))
$(eval $(call args_stamp,rescore,$(MODEL_EXP)/.args/rescore,$(MODEL_EXP)/rescored/rescoring.yaml,RESCORE_ARGS))
$(if $(SEED_MODELS),$(eval $(call args_stamp,seeds,$(EXP)/.args/seeds,$(SEED_MODELS),SEEDS_ARGS)))
$(eval $(call args_stamp,package,$(MODEL_EXP)/.args/package,$(MODEL_EXP)/package.done,PACKAGE_ARGS))
# (only when the package is asked for: checking the installed one starts Python, and no other goal
# reaches package.done)
$(if $(filter package $(MODEL_EXP)/package.done,$(MAKECMDGOALS)),$(if $(package_replaced),\
  $(eval $(MODEL_EXP)/package.done: FORCE)))

FORCE:
