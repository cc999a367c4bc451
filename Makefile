# nutrimeta — `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
JOBS    ?= 2
LOCK    := requirements.lock
# uv on PATH, else one bootstrapped into the venv (empty if neither: pip is used instead)
UV       = $$(command -v uv || { [ -x $(VENV)/bin/uv ] || $(PY) -m pip install --quiet uv >&2 \
             || true; [ -x $(VENV)/bin/uv ] && echo $(VENV)/bin/uv; } || true)

.PHONY: help venv lock validate effects fit report analysis test test-all lint typecheck bench calibration mutation browser clean clean-venv

help: ## List every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@py=$$(tools/find-python.sh) || exit 1; \
	if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV); fi
	@uv=$(UV); if [ -n "$$uv" ]; then \
	  echo "installing $(LOCK) with uv"; \
	  "$$uv" pip install --quiet --python $(PY) --require-hashes -r $(LOCK) && \
	  "$$uv" pip install --quiet --python $(PY) --no-deps -e .; \
	else \
	  echo "installing $(LOCK) with pip"; \
	  $(PY) -m pip install --quiet --require-hashes -r $(LOCK) && \
	  $(PY) -m pip install --quiet --no-deps -e .; \
	fi
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv (Python >= 3.12) and install the locked dependencies and the package

lock: ## Refresh requirements.lock from pyproject.toml (keeps pins; UPGRADE=1 moves them)
	@py=$$(tools/find-python.sh) || exit 1; \
	if [ ! -x $(PY) ]; then "$$py" -m venv $(VENV); fi
	@uv=$(UV); [ -n "$$uv" ] || { echo "error: uv is needed to lock" >&2; exit 1; }; \
	"$$uv" pip compile --quiet pyproject.toml --extra test --generate-hashes --universal \
	  --python-version 3.12 --index-url https://pypi.org/simple --no-config \
	  --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade,) -o $(LOCK)

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

bench: $(STAMP) ## Speed benchmarks and the pipeline's time targets (slow; ONLY=peers,analysis,...)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/run.py $(if $(ONLY),--only $(ONLY),)

calibration: $(STAMP) ## Calibration study of the all-reports analysis on dask (SCHEDULER=ADDRESS; resumes)
	$(PY) benchmarks/calibration.py --workers $(JOBS) $(if $(SCHEDULER),--scheduler $(SCHEDULER),)

mutation: $(STAMP) ## Mutation testing of the statistical modules (mutmut; slow)
	$(PY) -m pip install --quiet 'mutmut>=3.8'
	$(PY) benchmarks/mutation.py

clean: ## Remove generated results and reports (keeps .venv)
	rm -rf build reports/*/ reports/index.html

clean-venv: ## Remove the virtual environment
	rm -rf $(VENV)
