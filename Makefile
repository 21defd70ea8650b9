# asr: developer entry points. `make install` once, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test bench clean

install: $(BIN)/asr

$(BIN)/asr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

test: install
	$(BIN)/python -m pytest -q

# Training throughput (audio-seconds/s) and transcription real-time factor on this machine.
bench: install
	$(BIN)/python bench/train_throughput.py configs/small.yaml --steps 8
	$(BIN)/python bench/transcribe_rtf.py

clean:
	rm -rf .pytest_cache build *.egg-info
