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
	@echo
	@echo "Above: test BLEU of the two shipped teachers (label smoothing alpha 0 and 0.1, recipes/bible/demo_teachers/)"
	@echo "and of their students distilled at T = 1, 2, 3, 64, read in the paper's terms under 'What the table shows'"
	@echo "(docs/PAPER.md). One seed, a 2+2-layer model, 12k verse pairs: docs/RESULTS.md has the demo's measured run."
	@echo "Full scale: bash recipes/bible/run_all.sh --profile cpu (equal-budget CPU grid with seeds), docs/GPU.md (GPU"
	@echo "profiles), recipes/iwslt14_de_en and recipes/wmt_en_de (the paper's corpora, GPUs). Outputs: runs/bible_demo/"

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q tests

test-fast: venv
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q -m "not slow" tests
