# `make run` opens evpipe on a fresh demo pipeline; `make test` runs the lint and the whole suite.
# `make help` lists every target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench clean bytecode

help: ## List the targets
	@grep -hE '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## (.*)/  make \1\t\2/' | expand -t 16

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes. The checkout is the package `evpipe`, so
# setuptools installs it with a meta path finder and says so in a UserWarning (InformationOnly,
# "Editable installation ..."): nothing to act on, so the first `make run` does not show it.
QUIET_PIP := PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet

.stamp-install: pyproject.toml | $(BIN)/python
	$(QUIET_PIP) -e .
	touch $@

.stamp-test: pyproject.toml | $(BIN)/python
	$(QUIET_PIP) -e '.[test,lint]'
	touch $@ .stamp-install

# The checkout's own modules compiled ahead: Python reads these .pyc files even where it is told not to
# write any (PYTHONDONTWRITEBYTECODE), so no launch of evpipe compiles its ~60 modules again (0.2 s).
# The app runs with -OO (tui/launch.py): the checkout and the libraries are compiled for that too
# (a second set of files, .opt-2.pyc; a library's file Python cannot compile is left to itself).
bytecode: | $(BIN)/python
	@$(BIN)/python -m compileall -q models tui seeds > /dev/null
	@$(BIN)/python -OO -m compileall -q models tui seeds > /dev/null
	@$(BIN)/python -OO -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true

run: .stamp-install bytecode ## Set everything up and open evpipe on a fresh demo pipeline
	$(BIN)/evpipe demo
	@echo "The evpipe command is $(BIN)/evpipe (evpipe --help lists its commands)."

lint: .stamp-test ## ruff (lint and format check), import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# mypy reads the checkout through a view named evpipe: the root is that package once installed.
	@mkdir -p $(VENV)/typecheck && ln -sfn "$(CURDIR)" $(VENV)/typecheck/evpipe
	MYPYPATH=$(VENV)/typecheck $(BIN)/mypy

# The suite runs its core on SQLite and on a throwaway PostgreSQL server: ensure-postgres installs
# the server when missing; tests/conftest.py starts it for the session and stops it at the end.
test: lint bytecode ## Set everything up, lint, and run the whole suite (on SQLite and PostgreSQL)
	bash .ci/ensure-tmux
	bash .ci/ensure-postgres
	bash .ci/ensure-chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

format: .stamp-test ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# `make bench SIZE=1000000` for a million prospects (built once, cached in $TMPDIR/evpipe-bench).
SIZE ?= 100000
bench: .stamp-test bytecode ## Run the benchmarks and print one table of figures against issue 13's targets
	$(BIN)/python benchmarks/bench.py --size $(SIZE)

clean: ## Remove the virtual environment and build leftovers
	rm -rf $(VENV) .stamp-install .stamp-test *.egg-info build dist
