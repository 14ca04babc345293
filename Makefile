# The README's commands. Every target installs what it needs first.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
IMAGE ?= adult-income-byoc:latest

.PHONY: help venv system-deps test lint demo down train eda evaluate image bench bench-load bench-fuzz report notebooks lock aws-up aws-evidence aws-down

help:
	@echo "make demo   - the local end-to-end demo (container, local InvokeEndpoint, local API Gateway, requests)"
	@echo "make down   - stop everything 'make demo' started"
	@echo "make test   - install what is needed and run the whole test suite"
	@echo "make train  - full training run: CV model selection, evaluation, artifact in model/"
	@echo "make image  - build the SageMaker container image ($(IMAGE))"
	@echo "make bench  - serving benchmarks (prints numbers, writes bench/results/*.json)"
	@echo "make bench-load / bench-fuzz - 100,000-request load run / 14,000 schemathesis cases"
	@echo "make report - build docs/report.pdf from the current artifacts and a real local run"
	@echo "make notebooks - execute notebooks/*.ipynb in place (local cloud path) and save their outputs"
	@echo "make aws-up / aws-evidence / aws-down - deploy to your AWS account, record the report's captures"
	@echo "               from it (then make report), tear it all down and prove nothing is left"

$(VENV_STAMP): requirements.txt requirements-dev.txt
	rm -rf .venv
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

system-deps:
	bash scripts/system-deps.sh

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/hadolint --config container/.hadolint.yaml container/Dockerfile

test: venv system-deps lint
	PY=$(PY) bash scripts/security-audit.sh
	$(PY) -m pytest

demo: venv system-deps
	$(PY) -m pipeline local demo

down: venv
	$(PY) -m pipeline local down

train: venv
	$(PY) -m pipeline train --output build/model --overwrite --reports docs/evaluation --release model --search-budget 600

evaluate: venv
	$(PY) -m pipeline evaluate --model model/model.tar.gz

eda: venv
	$(PY) -m pipeline eda

image:
	docker build -f container/Dockerfile -t $(IMAGE) .

bench: venv system-deps
	$(PY) bench/bench_container.py
	$(PY) bench/bench_engines.py
	$(PY) bench/bench_local_path.py

bench-load: venv system-deps
	$(PY) bench/load.py

bench-fuzz: venv system-deps
	$(PY) bench/fuzz.py

report: venv system-deps
	$(PY) -m docs.report

notebooks: venv system-deps
	$(PY) -m docs.report.notebooks

# The AWS path (your account, your credentials; docs/deploy.md). deploy runs preflight first and stops
# before creating anything if a check fails; it ends with the invoke URL, the key file and the cost per
# hour. Its output is saved for the report: deploy prints a key value only with --show-key, which this
# target never passes (and the recording refuses a log that holds the key).
AWS_DIR := build/aws

aws-up: venv
	@mkdir -p $(AWS_DIR)
	set -o pipefail; { echo "== make aws-up: python -m pipeline deploy, $$(date -u '+%Y-%m-%d %H:%M UTC')"; \
	  $(PY) -m pipeline deploy; } 2>&1 | tee $(AWS_DIR)/deploy.log

aws-evidence: venv
	$(PY) -m docs.report.cloud_session --deploy-log $(AWS_DIR)/deploy.log

# Teardown, then a separate look (by name and by tag) that exits non-zero if anything is left.
aws-down: venv
	$(PY) -m pipeline teardown --yes; torn=$$?; $(PY) -m pipeline verify-gone; gone=$$?; \
	  exit $$(( torn || gone ))

lock:
	rm -rf /tmp/lock-venv && python3 -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install -q -r requirements.in
	{ echo "# Runtime environment shared by training and serving: generated from requirements.in by"; \
	  echo "# 'make lock'; every transitive dependency pinned. The container installs exactly this file."; \
	  /tmp/lock-venv/bin/pip freeze; } > requirements.txt
