# cdc: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := $(PYTHON) deploy/stack/stack.py
PYTEST_ARGS ?=

.PHONY: install stack-up stack-env stack-down stack-status demo demo-stop test test-unit test-integration bench lint fmt clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(wildcard */*/_*speedups.c)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cdc needs Python 3.11 or later")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@
	@echo "install: $(BIN)/cdc is ready"

stack-up:
	@$(STACK) up

stack-env:
	@$(STACK) env

stack-down:
	@$(STACK) down

stack-status:
	@$(STACK) status

demo: install stack-up
	@eval "$$($(STACK) env)" && $(BIN)/python deploy/demo/demo.py

demo-stop:
	@$(BIN)/python deploy/demo/demo.py stop

test: install stack-up
	@eval "$$($(STACK) env)" && $(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	@$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: install stack-up
	@eval "$$($(STACK) env)" && $(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

bench: install stack-up
	@eval "$$($(STACK) env)" && $(BIN)/python bench/run_all.py

lint: install
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check cdc connectors
	@$(BIN)/mypy

fmt: install
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format cdc connectors

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
