# `make render`: set up and render dist/. `make test`: set up and run every check CI runs.
PYTHON ?= python3
VENV := .venv
CHECKOV_VENV := .venv-checkov

.PHONY: render test lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

render: $(VENV)/.installed
	$(VENV)/bin/python build.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(CHECKOV_VENV)/.installed
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache
