# Two commands on a fresh machine:  `make demo` (dump the bundled course, show it)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pyenv machines: let tox find both interpreters of the test matrix.
export PYENV_VERSION ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare | grep -E '^3\.(11|12)\.' | sort -V | tr '\n' ':' | sed 's/:$$//')

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
