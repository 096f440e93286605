# The README's two commands. Both build .venv first (pip, editable installs of the core and every plugin).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: demo test lint clean

$(BIN)/ssmkit: pyproject.toml $(PLUGINS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(BIN)/ssmkit

demo: $(BIN)/ssmkit
	$(BIN)/ssmkit demo

test: $(BIN)/ssmkit
	$(BIN)/python -m pytest

lint: $(BIN)/ssmkit
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
