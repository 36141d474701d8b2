# Two commands set up a fresh machine and run: `make demo` and `make test`.
# Each first installs what it needs (idempotent): OS packages, then the virtual environment.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml infra/setup-machine.sh
	bash infra/setup-machine.sh
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(PY) -m streams.demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/ingest.py

clean:
	rm -rf .venv var
