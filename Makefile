# `make render`: set up and render dist/. `make test`: set up and run every check CI runs.
PYTHON ?= python3
VENV := .venv
CHECKOV_VENV := .venv-checkov
SCANNERS_VENV := .venv-scanners
NODE_MODULES := node_modules
PIP_INSTALL = bin/pip install --quiet --disable-pip-version-check

.PHONY: render test lint setup clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> Setting up $(VENV) (troposphere, cfn-lint, pytest, moto, ruff): about a minute"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

# checkov and the outside scanners pin dependencies that conflict with ours: own virtualenvs.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "==> Setting up $(CHECKOV_VENV) (checkov): about a minute"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/$(PIP_INSTALL) -r requirements-checkov.txt
	touch $@

$(SCANNERS_VENV)/.installed: requirements-scanners.txt
	@echo "==> Setting up $(SCANNERS_VENV) (cfripper, parliament, cloudsplaining, cfn-lint-serverless): under a minute"
	$(PYTHON) -m venv $(SCANNERS_VENV)
	$(SCANNERS_VENV)/$(PIP_INSTALL) -r requirements-scanners.txt
	touch $@

$(NODE_MODULES)/.installed: package.json package-lock.json
	@echo "==> Installing $(NODE_MODULES) with npm ci (iam-simulate, cfn-guard): under a minute"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

render: $(VENV)/.installed
	$(VENV)/bin/python build.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(SCANNERS_VENV)/.installed $(NODE_MODULES)/.installed

test: setup lint
	@echo "==> Running the tests (pytest): a few minutes"
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(SCANNERS_VENV) $(NODE_MODULES) .pytest_cache .ruff_cache
