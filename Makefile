# Two commands: `make run` opens evpipe on a fresh demo pipeline; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes.
.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ .stamp-install

run: .stamp-install
	$(BIN)/evpipe demo

test: .stamp-test
	bash .ci/ensure-tmux
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: .stamp-test
	$(BIN)/python benchmarks/kpi_speed.py
	$(BIN)/python benchmarks/app_speed.py
	$(BIN)/python benchmarks/import_speed.py

clean:
	rm -rf $(VENV) .stamp-install .stamp-test *.egg-info
