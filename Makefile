# Two commands on a fresh machine:  `make demo` (dump the bundled course, show it)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pyenv machines: put the real 3.11 and 3.12 interpreters on PATH, so tox finds both of the matrix.
PYENV_BINS := $(shell command -v pyenv >/dev/null 2>&1 && for v in $$(pyenv versions --bare | grep -E '^3\.1[12]\.[0-9]+$$'); do printf '%s:' "$$(pyenv root)/versions/$$v/bin"; done)
export PATH := $(PYENV_BINS)$(PATH)

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

demo: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[embedded]'
	$(BIN)/event-sinks demo

test: $(BIN)/python
	$(BIN)/python -m pip install -q tox
	$(BIN)/tox

lint: $(BIN)/python
	$(BIN)/python -m pip install -q ruff
	$(BIN)/ruff check event_sinks tests benchmarks

clean:
	rm -rf $(VENV) .tox event_sinks_data
