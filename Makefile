# asr: developer entry points. `make install` once, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test bench clean kenlm

install: $(BIN)/asr

$(BIN)/asr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,phones]"
	@touch $@

# One pytest worker per core, at most 4 (each holds torch, ~1.5 GB): the suite's tests are
# independent (own tmp dirs; torchrun picks free ports), and its subprocess-heavy recipe tests
# leave a core idle otherwise. `pytest` alone still runs them one at a time.
test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4

# Training throughput (audio-seconds/s) and transcription real-time factor on this machine.
bench: install
	$(BIN)/python bench/train_throughput.py configs/small.yaml --steps 8
	$(BIN)/python bench/transcribe_rtf.py

# Optional: KenLM's lmplz and build_binary into $(BIN) (`asr lm build` uses lmplz when found).
# Builds the PyPI kenlm source; needs cmake, g++ and Debian's libboost-program-options-dev
# libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev (its CMake asks for the test
# framework too; without it, configuring fails). About 70 s on one core.
KENLM_VERSION ?= 0.3.0
KENLM_DIR ?= $(VENV)/kenlm-src
kenlm: $(BIN)/lmplz

$(BIN)/lmplz:
	mkdir -p $(KENLM_DIR)
	$(BIN)/pip download --quiet --no-deps --no-binary kenlm kenlm==$(KENLM_VERSION) -d $(KENLM_DIR)
	tar xzf $(KENLM_DIR)/kenlm-$(KENLM_VERSION).tar.gz -C $(KENLM_DIR)
	cmake -S $(KENLM_DIR)/kenlm-$(KENLM_VERSION) -B $(KENLM_DIR)/kenlm-$(KENLM_VERSION)/build -DCMAKE_BUILD_TYPE=Release
	$(MAKE) -C $(KENLM_DIR)/kenlm-$(KENLM_VERSION)/build lmplz build_binary
	cp $(KENLM_DIR)/kenlm-$(KENLM_VERSION)/build/bin/lmplz $(KENLM_DIR)/kenlm-$(KENLM_VERSION)/build/bin/build_binary $(BIN)/

clean:
	rm -rf .pytest_cache build *.egg-info
