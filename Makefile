# `make run` opens evpipe on a fresh demo pipeline; `make test` runs the lint and the whole suite.
# `make help` lists every target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench clean

help: ## List the targets
	@grep -hE '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## (.*)/  make \1\t\2/' | expand -t 16

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes.
.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@ .stamp-install

run: .stamp-install ## Set everything up and open evpipe on a fresh demo pipeline
	$(BIN)/evpipe demo

lint: .stamp-test ## ruff (lint and format check), import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# mypy reads the checkout through a view named evpipe: the root is that package once installed.
	@mkdir -p $(VENV)/typecheck && ln -sfn "$(CURDIR)" $(VENV)/typecheck/evpipe
	MYPYPATH=$(VENV)/typecheck $(BIN)/mypy

test: lint ## Set everything up, lint, and run the whole suite
	bash .ci/ensure-tmux
	bash .ci/ensure-chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

format: .stamp-test ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: .stamp-test ## Run every benchmark (prints figures against targets)
	$(BIN)/python benchmarks/kpi_speed.py
	$(BIN)/python benchmarks/app_speed.py
	$(BIN)/python benchmarks/import_speed.py

clean: ## Remove the virtual environment and build leftovers
	rm -rf $(VENV) .stamp-install .stamp-test *.egg-info build dist
