# `make demo` and `make test` each set up everything on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps bench lint clean translations

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

# Two pytest processes, one test file at a time each (a file's module fixtures stay in one
# process): about half the serial time on 2 cores (README, "Tests and benchmarks").
test: setup
	$(PY) -m pytest -n 2 --dist loadfile

bench: setup
	$(PY) bench/grading.py --assignment mlp_numpy
	$(PY) bench/references.py

# Extract, update and compile the gettext catalogs (grader.i18n.DOMAIN_SOURCES; one domain:
# make translations I18N_DOMAINS=reports). Translate what update added, then run it again.
I18N_DOMAINS ?= $(shell $(PY) -c "from grader import i18n; print(*i18n.DOMAIN_SOURCES)")
translations: $(STAMP)
	@for domain in $(I18N_DOMAINS); do \
	  dir=$$($(PY) -c "from grader import i18n; print(i18n.catalog_folder('$$domain', '.'))"); \
	  src=$$($(PY) -c "from grader import i18n; print(*i18n.DOMAIN_SOURCES['$$domain'])"); \
	  $(VENV)/bin/pybabel extract -F babel.cfg -k _ -k _n:1,2 -k lazy --no-location \
	    --sort-output -o $$dir/$$domain.pot $$src && \
	  $(VENV)/bin/pybabel update -i $$dir/$$domain.pot -d $$dir -D $$domain -l zh_CN \
	    --no-fuzzy-matching --ignore-obsolete && \
	  $(VENV)/bin/pybabel compile -d $$dir -D $$domain -l zh_CN --statistics || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check grader reference tests bench

clean:
	rm -rf $(VENV) build *.egg-info
