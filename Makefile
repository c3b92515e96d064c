# The two commands of the README:
#   make reproduce   set up .venv and run the quick pipeline, writing figures and the report
#   make test        set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= quick
SEED ?= 0
STAMP := $(VENV)/.requirements-installed

.PHONY: reproduce test lint bench clean-generated venv

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m src reproduce --preset $(PRESET) --seed $(SEED)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_data_generation.py

clean-generated:
	rm -rf 00_demonstrations_data/datasets 00_demonstrations_data/figures 00_demonstrations_data/runs \
	       00_demonstrations_data/executed_notebooks 00_demonstrations_data/report
