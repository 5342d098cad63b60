# stepmail — everyday commands.  `make demo` and `make test` set everything up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true

CONSOLE_VENDOR := twin/console/static/vendor/dagre.min.js

.PHONY: setup demo test test-long soak lint format typecheck pr synth deploy serve lock clean bench chromium

setup: $(STAMP) $(CONSOLE_VENDOR) chromium

# The console's graph layout library, from the pinned npm package (no CDN at run time).
$(CONSOLE_VENDOR): $(STAMP)
	mkdir -p $(@D) && cp node_modules/@dagrejs/dagre/dist/dagre.min.js $@

# The console's browser test drives Debian's chromium through Playwright (which downloads no browser).
chromium:
	@test -x /usr/bin/chromium || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium; }

$(STAMP): requirements.txt requirements-checkov.txt functions/requirements.txt pyproject.toml package.json package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	# checkov pins an older boto3 than the project: it gets a virtualenv of its own.
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(STAMP)

demo: setup  ## the whole pipeline on the local twin, with a report
	$(BIN)/stepmail demo

test: setup  ## every test: unit, integration (the twin), infrastructure (synth, cdk-nag, cfn-lint, asl-validator)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-long: setup  ## the long variants too
	STEPMAIL_LONG_TESTS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

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

typecheck: setup
	$(BIN)/mypy functions/stepmail/core

pr: lint typecheck test  ## the gate before a merge

synth: setup  ## cdk.out/ (bundles the Lambda code locally, no Docker)
	npx cdk synth --quiet

deploy: setup
	npx cdk deploy

serve: setup  ## the local twin until Ctrl-C
	$(BIN)/stepmail local serve

lock:  ## re-pin requirements.txt from a fresh resolve
	rm -rf /tmp/stepmail-lock && $(PYTHON) -m venv /tmp/stepmail-lock
	/tmp/stepmail-lock/bin/pip install --quiet -r <(grep -v '^#' requirements.in)
	(echo "# Development, CDK synth, tests and the local twin. Pinned: regenerate with \`make lock\`."; \
	 /tmp/stepmail-lock/bin/pip freeze | sort) > requirements.txt

clean:
	rm -rf $(VENV) .venv-checkov .bench/py313 .bench/py313-native .bench/results node_modules cdk.out .stepmail .pytest_cache .mypy_cache .ruff_cache twin/console/static/vendor test-artifacts
