# batch-export: every task a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install browser demo test unit unit-fast lint format bench bench-quick bench-peers clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## Make .venv and install the project with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install ## Start the emulator on sample_data/, export the small job 3 ways, print the summary
	bash scripts/demo.sh

test: install browser postgres lint unit ## Lint, type-check and run the whole test suite

# The HTML report is checked in a real headless browser; Debian's chromium, installed when
# running as root (as CI does), otherwise only asked for.
browser: ## Install headless Chromium for the report's browser test (Debian, as root)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing chromium for the browser test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make browser: install chromium to run the report's browser test" >&2; fi; }

# The warehouse tests start a real PostgreSQL server in a temp directory (tests/postgres.py);
# Debian's server binaries, installed when running as root (as CI does), otherwise only asked for.
# A policy-rc.d that says no keeps the package from starting a server of its own.
postgres: ## Install PostgreSQL's server binaries for the warehouse tests (Debian, as root)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing postgresql for the warehouse tests..."; \
	    own_policy=0; if [ ! -e /usr/sbin/policy-rc.d ]; then own_policy=1; \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	    status=$$?; [ $$own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; exit $$status; \
	  else echo "make postgres: install postgresql to run the warehouse tests" >&2; fi; }

unit: install ## Run the tests only
	$(BIN)/pytest -q

unit-fast: install ## The quick tests only, on both cores, for the edit-test loop (make test runs all)
	$(BIN)/pytest -q -x -m "not slow" -n 2

lint: install ## ruff (lint and format check), mypy --strict, and the import contracts
	$(BIN)/ruff check batch_export tests scripts bench examples
	$(BIN)/ruff format --check batch_export tests scripts bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix batch_export tests scripts bench examples
	$(BIN)/ruff format batch_export tests scripts bench examples

bench: install ## Benchmarks against the emulator; writes BENCHMARKS.md (about 7 minutes; more with make bench-peers)
	$(BIN)/python -m bench

bench-quick: install ## A smaller benchmark run (under a minute)
	$(BIN)/python -m bench --quick

# dlt lives in a venv of its own, so that its dependencies never meet the project's; `make
# bench` adds a dlt row whenever .venv-peers/bin/python exists.
bench-peers: ## Make .venv-peers with dlt, for the dlt row of `make bench` (a few minutes)
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check 'dlt[parquet]>=1.20,<2'

clean: ## Remove the virtual environment, caches and demo output
	rm -rf $(VENV) .venv-peers out .pytest_cache .mypy_cache .ruff_cache .hypothesis
