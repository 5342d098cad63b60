# stepmail — everyday commands.  `make demo` installs the twin's packages only; `make test` everything.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
TWIN_STAMP := $(VENV)/.twin-installed
STAMP := $(VENV)/.installed
CHECKOV_STAMP := .venv-checkov/.installed
NODE_STAMP := node_modules/.package-lock.json
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true

CONSOLE_VENDOR := twin/console/static/vendor/dagre.min.js

.PHONY: setup demo test test-long e2e soak lint format typecheck pr synth deploy serve lock clean bench chromium \
	check-package

# Everything `make test` needs: the pinned development set, Node's CDK CLI, checkov's venv, Chromium.
setup: $(STAMP) $(CONSOLE_VENDOR) chromium

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The demo and the twin: the project with its `twin` extra, at the versions requirements.txt pins.
$(TWIN_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(PIP) -c requirements.txt -e '.[twin]'
	touch $@

$(STAMP): $(TWIN_STAMP) requirements.txt functions/requirements.txt $(NODE_STAMP) $(CHECKOV_STAMP)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# checkov pins an older boto3 than the project: it gets a virtualenv of its own.
$(CHECKOV_STAMP): requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# The console's graph layout library, from the pinned npm package (no CDN at run time).
$(CONSOLE_VENDOR): $(NODE_STAMP)
	mkdir -p $(@D) && cp node_modules/@dagrejs/dagre/dist/dagre.min.js $@

# The console's browser test drives Debian's chromium through Playwright (which downloads no browser).
chromium:
	@test -x /usr/bin/chromium || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium; }

demo: $(TWIN_STAMP)  ## the whole pipeline on the local twin, with a report
	$(BIN)/stepmail demo

test: setup lint typecheck check-package  ## the gate: lint, format, types, the package, then every test
	$(BIN)/python -m pytest -n 2 --dist loadfile

check-package: $(BIN)/python  ## `pip install .` without extras gives a working client and CLI
	$(BIN)/python tests/packaging/check_install.py

test-long: setup  ## the long variants too
	STEPMAIL_LONG_TESTS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

STACK ?= Stepmail
e2e: $(STAMP)  ## mail through the deployed stack STACK to SES's mailbox simulator, checked, then removed
	STEPMAIL_E2E_STACK=$(STACK) $(BIN)/python -m pytest -s -v -p no:cacheprovider tests/e2e

RUNS ?= 30
soak: setup  ## the randomized run RUNS times in a row, each with a fresh seed (outside `make test`)
	@passed=0; for run in $$(seq $(RUNS)); do \
	  if $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/integration/test_randomized.py > .soak.log 2>&1; \
	  then passed=$$((passed + 1)); result=passed; else result=FAILED; fi; \
	  echo "run $$run: $$result  $$(grep -Eo 'seed=[0-9]+ messages=[0-9]+' .soak.log | head -1)  $$(tail -1 .soak.log)"; \
	  test $$result = passed || cp .soak.log .soak-failed-$$run.log; \
	done; rm -f .soak.log; echo "soak: $$passed of $(RUNS) runs passed"; test $$passed -eq $(RUNS)

bench: setup  ## every benchmark (memory, cold start, throughput, rate control, cost); rewrites docs/performance.md
	$(BIN)/python bench/report.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup  ## every package (pyproject.toml's [tool.mypy] files), the core strictly
	$(BIN)/mypy

pr: test  ## the gate before a merge

synth: setup  ## cdk.out/ (bundles the Lambda code locally, no Docker)
	npx cdk synth --quiet

deploy: setup
	npx cdk deploy

serve: $(TWIN_STAMP) $(CONSOLE_VENDOR)  ## the local twin until Ctrl-C
	$(BIN)/stepmail local serve

lock:  ## re-pin requirements.txt from a fresh resolve of requirements.in (the project's dev extra)
	rm -rf /tmp/stepmail-lock && $(PYTHON) -m venv /tmp/stepmail-lock
	/tmp/stepmail-lock/bin/pip install --quiet -r requirements.in
	(echo "# Development, CDK synth, tests and the local twin. Pinned: regenerate with \`make lock\`."; \
	 /tmp/stepmail-lock/bin/pip freeze --exclude stepmail | LC_ALL=C sort -f) > requirements.txt

clean:
	rm -rf $(VENV) .venv-checkov build .bench/py313 .bench/py313-native .bench/results node_modules cdk.out .stepmail .pytest_cache .mypy_cache .ruff_cache twin/console/static/vendor test-artifacts
