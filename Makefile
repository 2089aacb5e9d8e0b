# Two commands: `make demo` and `make test`. Both build .venv and node_modules from
# pyproject.toml / package-lock.json (idempotent: stamps skip work that is done).
# `lint` is ruff plus the layer contracts (lint-imports, configured in pyproject.toml).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup demo test lint typecheck unit integration docs bench clean

all: test

$(STAMP): pyproject.toml setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

demo: setup
	$(PY) examples/sum_of_powers.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy azure_batch_executor

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site

test: setup lint typecheck docs
	$(PY) -m pytest tests -q

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) node_modules build site .pytest_cache .mypy_cache .ruff_cache
