# Set-up and entry points. Every target installs what it needs first and is idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lskd-installed

.PHONY: venv demo lint test test-fast

$(STAMP): requirements.txt requirements-fairseq.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-fairseq.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

demo: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash recipes/bible/run_all.sh --profile demo

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q tests

test-fast: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q -m "not slow" tests
