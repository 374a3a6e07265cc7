# The two commands of README.md: `make up` runs the platform, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint e2e-deps bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/meterflow up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The end-to-end browser test drives Debian's chromium; install it when missing.
e2e-deps: $(STAMP)
	sh tests/e2e/install.sh

test: lint e2e-deps
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/meterflow bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
