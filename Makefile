# One Makefile for the README, CI and developers. A fresh machine needs only python3 and git:
# uv is installed with pip when missing, then everything installs from uv.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE ?= copy

# Where uv is: on PATH, importable by python3, or where the `uv` target installs it. Recursive (=) so
# that it is looked up again after the `uv` target has run.
UV_TOOLS := .retrain/tools
UV = $(shell command -v uv 2>/dev/null || { python3 -m uv --version >/dev/null 2>&1 && echo "python3 -m uv"; } || \
	{ test -x "$(HOME)/.local/bin/uv" && echo "$(HOME)/.local/bin/uv"; } || echo "$(UV_TOOLS)/bin/uv")

.PHONY: help uv uv-version install demo test test-all test-unit lint typecheck fmt check clean bench bench-trigger \
	bench-ratios bench-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv:  ## install uv with pip if it is missing (user site, else a private venv under .retrain/tools)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
	  test -x "$(HOME)/.local/bin/uv" || test -x "$(UV_TOOLS)/bin/uv" || \
	  python3 -m pip install --user --quiet uv 2>/dev/null || \
	  python3 -m pip install --user --quiet --break-system-packages uv 2>/dev/null || \
	  { python3 -m venv $(UV_TOOLS) && $(UV_TOOLS)/bin/python -m pip install --quiet uv; }
	@# make expands a whole recipe before its first line runs: a sub-make looks for uv afresh
	@$(MAKE) --no-print-directory uv-version

uv-version:
	@$(UV) --version

install: uv  ## create .venv from uv.lock (exact versions)
	@$(UV) sync --frozen --quiet

demo: install  ## the whole lifecycle on the embedded demo data, from a fresh demo state
	$(UV) run --frozen retrain demo

# Three pytest workers, each stealing tests from the others' queues when idle (the long tests would
# otherwise end up in one worker). Three on 2 cores: much of a test is waiting on Prefect, MLflow, DVC
# and subprocesses (measured: 5:28 against 5:52 with two). TEST_WORKERS= runs serially.
TEST_WORKERS ?= -n 3 --dist worksteal
FAST = not stack and not slow

test: install  ## what a developer runs: unit + integration on real Prefect, MLflow, DVC, GX (no live stack)
	$(UV) run --frozen pytest -m "$(FAST)" $(TEST_WORKERS) $(PYTEST_ARGS)

# The whole suite on three workers: the live stack's tests all go to one of them (they share one stack,
# see tests/stack/conftest.py), while the other two take the rest; the slow tests load the machine on
# purpose. Three on two cores, as for make test: most of a stack or demo test waits on servers and
# subprocesses (measured on a loaded machine with two: 28:33, the stack's group alone 14 minutes).
TEST_ALL_WORKERS ?= -n 3 --dist loadgroup

test-all: install  ## the whole suite: make test's, the live team stack, the browser and the slow tests
	$(UV) run --frozen pytest $(TEST_ALL_WORKERS) $(PYTEST_ARGS)

test-unit: install  ## only the fast unit tests
	$(UV) run --frozen pytest tests/unit $(PYTEST_ARGS)

lint: install  ## ruff lint + format check + the layers (import-linter)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

typecheck: install  ## mypy
	$(UV) run --frozen mypy

fmt: install  ## format and auto-fix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench-trigger: install  ## retraining policies replayed on drifting streams, 5 seeds (about 9 min on 2 cores)
	$(UV) run --frozen python benchmarks/bench_trigger.py --markdown benchmarks/results/trigger.md

bench-ratios: install  ## each cost beside its bare reference in the same run: a table of ratios (about 6 min)
	$(UV) run --frozen python benchmarks/suite.py

bench: bench-ratios bench-trigger  ## the benchmarks: ratios and tables under benchmarks/results/

# The committed baseline is benchmarks/results/baseline.json: copy results/bench.json over it when a
# change makes a ratio better on purpose (and say so in the commit).
bench-check: install  ## measure the ratios again and report any more than 20% worse than the baseline
	$(UV) run --frozen python benchmarks/suite.py --check benchmarks/results/baseline.json

check: lint typecheck test-all  ## what CI runs (.ci/run)

clean:  ## remove the embedded state (.retrain/) and caches
	rm -rf .retrain .pytest_cache .mypy_cache .ruff_cache
