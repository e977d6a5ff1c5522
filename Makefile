# oms — the two commands of the quick start are `make demo` and `make test`.
# Everything they install is cached under .devenv/ (ignored by git); a second run reuses it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
DEVENV := .devenv
UV_VERSION := 0.13.8
UV := $(DEVENV)/tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
ENV ?= dev
START := $(shell date +%s.%N)

export UV_CACHE_DIR := $(CURDIR)/$(DEVENV)/uv-cache
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

define elapsed
	@$(PY) -c "import time; print(f'make $(1): wall time {time.time() - $(START):.1f}s')"
endef

.PHONY: help setup up down status test demo serve bench synth lint check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(DEVENV)/tools
	$(DEVENV)/tools/bin/pip install -q --cache-dir $(DEVENV)/pip-cache uv==$(UV_VERSION)

# The venv is rebuilt only when the lock file or the project's metadata change.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced ## create the venv from uv.lock (cached)

up: setup ## install (once) and start the local Kafka, Redis and FerretDB
	$(PY) devenv/devenv.py up

down: ## stop the local servers devenv started
	@if [ -x $(PY) ]; then $(PY) devenv/devenv.py down; fi

status: setup ## tell which local servers run and answer
	$(PY) devenv/devenv.py status

test: up lint ## set up, lint, then run the whole test suite
	$(PY) -m pytest
	$(call elapsed,test)

demo: up ## set up, start oms serve and drive a demo through it
	$(PY) -m oms.cli demo
	$(call elapsed,demo)

serve: up ## run oms serve in the foreground
	$(PY) -m oms.cli serve

# Each benchmark prints `name: value` lines; none of them asserts a timing.
bench: up ## run every benchmark in bench/ (prints name: value lines)
	@echo "== bench/engine.py (place -> SETTLED)"; $(PY) bench/engine.py
	@echo "== bench/engine.py --resting 1000000"; $(PY) bench/engine.py --resting 1000000
	@echo "== bench/store.py (MongoDB write-behind)"; $(PY) bench/store.py
	@echo "== bench/e2e.py --via rest"; $(PY) bench/e2e.py --via rest
	@echo "== bench/e2e.py --via kafka"; $(PY) bench/e2e.py --via kafka
	@echo "== bench/consumer_ceiling.py (faust agent vs aiokafka batches)"; $(PY) bench/consumer_ceiling.py
	@echo "== bench/event_sink.py (CPU per published order event)"; $(PY) bench/event_sink.py

synth: setup ## write every CDKTF stack of ENV=dev|prod|cost to infra-cdktf/cdktf.out/
	cd infra-cdktf && ENV=$(ENV) ../$(PY) main.py

LINTED := oms tests bench devenv infra-cdktf

lint: setup ## ruff (lint and format), mypy --strict and import-linter's layers: part of make test
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy oms
	$(VENV)/bin/lint-imports
