# nutrimeta — `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
JOBS    ?= 2

.PHONY: help venv validate effects fit report analysis test test-all lint typecheck bench calibration browser clean clean-venv

help: ## List every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@py=$$(tools/find-python.sh) || exit 1; \
	if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv (Python >= 3.12) and install the package with its dependencies

validate: $(STAMP) ## Validate data/ (every problem, with file, row and column)
	$(VENV)/bin/nutrimeta validate

effects: $(STAMP) ## Compute the tidy effect-size table (build/effects.csv)
	$(VENV)/bin/nutrimeta effects

fit: $(STAMP) ## Fit every analysis in analyses/ (refits only what changed)
	$(VENV)/bin/nutrimeta fit

report: $(STAMP) ## Render reports/ from saved results (never refits)
	$(VENV)/bin/nutrimeta report

analysis: $(STAMP) ## Set up and run the whole pipeline: validate, effects, fit, report
	$(VENV)/bin/nutrimeta analysis

test: $(STAMP) ## Run the test suite (slow tests excluded; see test-all)
	$(PY) -m pytest -n $(JOBS) -m "not slow"

test-all: $(STAMP) ## Run every test, slow ones included (several minutes)
	$(PY) -m pytest -n $(JOBS)

lint: $(STAMP) typecheck ## ruff check and the static type check
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: $(STAMP) ## mypy on src/ (configured in pyproject.toml)
	$(VENV)/bin/mypy

bench: $(STAMP) ## Speed benchmarks, as ratios against a baseline in the same run (slow)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/run.py

calibration: $(STAMP) ## Calibration study of the all-reports analysis (slow, several minutes)
	$(PY) benchmarks/calibration.py --workers $(JOBS)

clean: ## Remove generated results and reports (keeps .venv)
	rm -rf build reports/*/ reports/index.html

clean-venv: ## Remove the virtual environment
	rm -rf $(VENV)
