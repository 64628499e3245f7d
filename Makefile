# glyphray: two commands on a fresh machine.
#   make demo   installs everything into .venv and runs the demo (generated data, no cluster, no downloads)
#   make test   installs (if needed), lints (make lint) and runs the test suite (make test-fast: unit tests only)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := runs/demo

.PHONY: setup demo lint test test-fast bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[all,test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/lpasrn synth --out $(DEMO)/plates --tracks 2000 --frames 2 --layout mixed --seed 0 --overwrite
	$(BIN)/lpasrn preview $(DEMO)/plates --out $(DEMO)/plates_sheet.png --max-tracks 16
	$(BIN)/lpasrn train --config lp_asrn_tiny
	$(BIN)/lpasrn evaluate --checkpoint runs/lp_asrn_tiny/lp_asrn_bundle.pt --data $(DEMO)/plates \
		--report $(DEMO)/lpasrn_eval.json --grid $(DEMO)/lpasrn_eval_grid.png
	$(BIN)/digits import-sklearn --out $(DEMO)/digits --overwrite
	$(BIN)/digits train --train digit_recognizer_v4 --epochs 8 \
		--set 'data_sources=[{path: $(DEMO)/digits, weight: 1}]' export_dir=$(DEMO)/exported_models
	@echo "demo outputs: $(DEMO)/ (plates, contact sheet, evaluation, digit exports) and runs/lp_asrn_tiny/"

lint: setup  # ruff (lint, import order, format) and mypy, configured in pyproject.toml; `make test` runs it first
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

test-fast: setup  # the edit-run loop: unit tests only (integration and e2e are marked slow)
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/pip install -e '.[bench]' -q
	$(BIN)/python bench/synth_speed.py
	$(BIN)/python bench/models_speed.py
	$(BIN)/python bench/train_overhead.py
	$(BIN)/python bench/digits_latency.py
	$(BIN)/python bench/onnx_speed.py
	$(BIN)/python bench/data_loading.py
	$(BIN)/python bench/loader_vs_gpu.py
	$(BIN)/python bench/generator_vs_reference.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/gpu.py
	$(BIN)/python bench/tune_vs_kerastuner.py

clean:
	rm -rf $(DEMO) runs/lp_asrn_tiny .pytest_cache
