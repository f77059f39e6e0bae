# `make demo` and `make test` each set up everything on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests need (dataset, sandbox); installs them when run as root.
system-deps:
	bash scripts/system-deps.sh

setup: $(STAMP) system-deps
	$(PY) -m grader data check

demo: setup
	$(PY) -m grader demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/grading.py --assignment mlp_numpy
	$(PY) bench/references.py

lint: $(STAMP)
	$(VENV)/bin/ruff check grader reference tests bench

clean:
	rm -rf $(VENV) build *.egg-info
