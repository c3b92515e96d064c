# The commands of the README:
#   make reproduce   set up .venv and run the pipeline (PRESET=paper by default: the shipped networks and the
#                    paper's figures; PRESET=quick trains a small population, PRESET=smoke is the tests' size)
#   make test        set up .venv and run the test suite
#   make docs        the documentation site, offline, with the executed notebooks (docs/_build/html/index.html)
# and two to open the notebooks:
#   make lab         JupyterLab on the repository, with the project's kernel
#   make dashboard   the 100-CNN browser (notebook 06) as a Voila app, code cells hidden
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= paper
SEED ?= 0
STAMP := $(VENV)/.requirements-installed

# empty: JupyterLab on 8888, the dashboard on 8866 (src/ssh_ood/commands/servers.py)
PORT ?=
# make test: pytest worker processes (tests of one module stay on one worker); 1 runs the suite in one process
TEST_WORKERS ?= 2
# extra pytest options for make test, e.g. PYTEST_ARGS='-k notebook' or PYTEST_ARGS=--durations=50
PYTEST_ARGS ?=

.PHONY: reproduce test lint bench mutation clean-generated venv lab dashboard docs

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m ssh_ood reproduce --preset $(PRESET) --seed $(SEED)

# the site shows the notebooks as `make reproduce` executed them: the reproduce step skips what is done
docs: reproduce
	$(PY) docs/build.py --notebooks 00_demonstrations_data/executed_notebooks --out docs/_build/html

test: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# The notebooks are the project's own: signing them (the signature lives in the user's Jupyter data folder, the
# files are unchanged) keeps the server from logging "Notebook ... is not trusted" on every open
TRUST_NOTEBOOKS := $(VENV)/bin/jupyter-trust *.ipynb $(wildcard 00_demonstrations_data/executed_notebooks/*.ipynb) >/dev/null
SERVE := $(PY) -m ssh_ood.commands.servers

# each prints one line, the address on 127.0.0.1 with a fresh token; Ctrl-C stops it
lab: $(STAMP)
	@$(TRUST_NOTEBOOKS)
	@$(SERVE) lab $(if $(PORT),--port $(PORT))

dashboard: $(STAMP)
	@$(TRUST_NOTEBOOKS)
	@$(SERVE) dashboard $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) benchmarks/bench_data_generation.py

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml, docs/testing.md): one module at a time,
# at low priority, then the per-module counts. Hours of CPU; not part of make test. Of the diagnostics module only
# the functions that compute the diagnostics (not its command line and files). MUTATION_TARGETS=... for fewer.
DIAGNOSTICS := ssh_ood.interpret.diagnostics
MUTATION_TARGETS ?= ssh_ood.ood.ood_estimators.* ssh_ood.ood.generalization_metrics.* ssh_ood.physics.winding_number.* \
	ssh_ood.physics.ceiling.* ssh_ood.base.file_records.* ssh_ood.physics.data_generation.* \
	ssh_ood.physics.constructions.* ssh_ood.physics.interventions.* \
	$(DIAGNOSTICS).x_*feature_* $(DIAGNOSTICS).x_pixel_correlation* $(DIAGNOSTICS).x_cam_diagnostics* \
	$(DIAGNOSTICS).x__rms_radius* $(DIAGNOSTICS).x_pca_diagnostics* $(DIAGNOSTICS).x_sensitivity_diagnostics* \
	$(DIAGNOSTICS).x_network_diagnostics*
mutation: $(STAMP)
	set -ef; for target in $(MUTATION_TARGETS); do \
		OMP_NUM_THREADS=1 nice -n 15 $(VENV)/bin/mutmut run --max-children 2 "$$target"; done
	$(VENV)/bin/mutmut results --all true | $(PY) benchmarks/mutation_summary.py

clean-generated:
	rm -rf 00_demonstrations_data/datasets 00_demonstrations_data/figures 00_demonstrations_data/runs \
	       00_demonstrations_data/executed_notebooks 00_demonstrations_data/report docs/_build
