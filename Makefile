# The README's two commands: `make run` (the service) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install stack run test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

stack:
	deploy/local/up

run: install stack
	PATH="$(CURDIR)/$(BIN):$$PATH" deploy/local/run

lint: install
	$(BIN)/ruff check .

test: install stack lint
	$(BIN)/pytest
	PYTHON=$(BIN)/python benchmarks/smoke.sh
