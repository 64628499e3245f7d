# glyphray: two commands on a fresh machine.
#   make demo   installs everything into .venv and runs the demo (generated data, no cluster, no downloads)
#   make test   installs (if needed) and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := runs/demo

.PHONY: setup demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[all,test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/lpasrn synth --out $(DEMO)/plates --tracks 60 --layout mixed --seed 0 --overwrite
	$(BIN)/lpasrn check-data --config lp_asrn_tiny
	$(BIN)/lpasrn preview $(DEMO)/plates --out $(DEMO)/plates_sheet.png --max-tracks 16
	$(BIN)/lpasrn config --config lp_asrn_tiny --out $(DEMO)
	@echo "demo outputs in $(DEMO)/ (dataset, plates_sheet.png, config.resolved.yaml)"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/synth_speed.py

clean:
	rm -rf $(DEMO) .pytest_cache
