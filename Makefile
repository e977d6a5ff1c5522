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
K ?= 3
START := $(shell date +%s.%N)

export UV_CACHE_DIR := $(CURDIR)/$(DEVENV)/uv-cache
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

define elapsed
	@$(PY) -c "import time; print(f'make $(1): wall time {time.time() - $(START):.1f}s')"
endef

.PHONY: help setup up down status test demo serve cluster bench synth lint check
.PHONY: web web-types web-types-check web-unit test-web web-screenshot

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(DEVENV)/tools
	$(DEVENV)/tools/bin/pip install -q --cache-dir $(DEVENV)/pip-cache uv==$(UV_VERSION)

# The venv is rebuilt only when the lock file or the project's metadata change.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# ---- the web app (web/): npm ci from the committed lock file, vite build only when an input
# changed; Debian's chromium for the browser tests (Playwright's own download is not used).
WEB := web
NPM_ENV := PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_audit=false npm_config_fund=false \
	npm_config_update_notifier=false
CHROMIUM := /usr/bin/chromium
WEB_INPUTS := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(WEB)/index.html \
	$(WEB)/vite.config.ts $(WEB)/tsconfig.json

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && $(NPM_ENV) npm ci --no-audit --no-fund
	@touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_INPUTS)
	cd $(WEB) && npx tsc -b && npx vite build --logLevel warn

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

web: $(WEB)/dist/index.html ## build the web app into web/dist (only when its inputs changed)

setup: $(VENV)/.synced $(WEB)/dist/index.html $(CHROMIUM) ## the venv from uv.lock, the web app's build, chromium (cached)

up: setup ## install (once) and start the local Kafka, Redis and FerretDB
	$(PY) devenv/devenv.py up

down: ## stop the local servers devenv started
	@if [ -x $(PY) ]; then $(PY) devenv/devenv.py down; fi

status: setup ## tell which local servers run and answer
	$(PY) devenv/devenv.py status

test: up lint web-unit ## set up, lint, then run the whole test suite (the browser tests too)
	$(PY) -m pytest
	$(call elapsed,test)

demo: up ## set up, start oms serve and drive a demo through it
	$(PY) -m oms.cli demo
	@echo
	@echo "The trading web app: run \`make serve\` and open http://$${OMS_HTTP_HOST:-127.0.0.1}:$${OMS_HTTP_PORT:-8080}/"
	@echo "  and log in with a key: $(VENV)/bin/oms keys create --role trader --account <an account above>"
	$(call elapsed,demo)

# The client's types are generated from the server's OpenAPI document (openapi-typescript).
web-types: $(WEB)/node_modules/.installed ## regenerate web/openapi.json and the client's types from the server
	$(PY) $(WEB)/scripts/openapi_json.py > $(WEB)/openapi.json
	cd $(WEB) && npx openapi-typescript openapi.json -o src/services/schema.d.ts --silent

# Drift fails: the committed document and types must be what the server makes today.
web-types-check: $(WEB)/node_modules/.installed
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
	&& $(PY) $(WEB)/scripts/openapi_json.py > "$$tmp/openapi.json" \
	&& (cd $(WEB) && npx openapi-typescript "$$tmp/openapi.json" -o "$$tmp/schema.d.ts" --silent) \
	&& diff -u $(WEB)/openapi.json "$$tmp/openapi.json" \
	&& diff -u $(WEB)/src/services/schema.d.ts "$$tmp/schema.d.ts" \
	|| { echo "web types are stale: run 'make web-types' and commit" >&2; exit 1; }

web-unit: setup web-types-check ## the web app's type check and vitest unit tests
	cd $(WEB) && npx tsc -b && npx vitest run

test-web: up web-unit ## the web app: types, vitest, then the Playwright story in chromium on oms serve
	$(PY) -m pytest tests/web tests/unit/api/test_webapp.py tests/unit/api/test_web_types.py
	$(call elapsed,test-web)

web-screenshot: ## copy the browser test's picture of the app to docs/web-app.png (the README's)
	cp $(WEB)/test-results/screens/web-app.png docs/web-app.png

serve: up ## run oms serve in the foreground
	$(PY) -m oms.cli serve

cluster: up ## run K=3 local replicas of oms serve in one group, on ports 8080, 8081, ...
	$(PY) -m oms.cli cluster up --replicas $(K)

# Each benchmark prints `name: value` lines; none of them asserts a timing.
bench: up ## run every benchmark in bench/ (prints name: value lines)
	@echo "== bench/engine.py (place -> SETTLED)"; $(PY) bench/engine.py
	@echo "== bench/engine.py --resting 1000000"; $(PY) bench/engine.py --resting 1000000
	@echo "== bench/engine.py --mix (limits, amends, cancels, stops; beside the MARKET profile)"; $(PY) bench/engine.py --mix
	@echo "== bench/store.py (MongoDB write-behind)"; $(PY) bench/store.py
	@echo "== bench/e2e.py --via rest"; $(PY) bench/e2e.py --via rest
	@echo "== bench/e2e.py --via rest --http-workers 2 (two door processes beside the engine)"; $(PY) bench/e2e.py --via rest --http-workers 2
	@echo "== bench/e2e.py --via kafka"; $(PY) bench/e2e.py --via kafka
	@echo "== bench/consumer_ceiling.py (faust agent vs aiokafka batches)"; $(PY) bench/consumer_ceiling.py
	@echo "== bench/event_sink.py (CPU per published order event)"; $(PY) bench/event_sink.py
	@echo "== bench/scale.py (1, 2, 3 replicas; SIGTERM, join and SIGKILL hand-offs)"; $(PY) bench/scale.py

synth: setup ## write every CDKTF stack of ENV=dev|prod|cost to infra-cdktf/cdktf.out/
	cd infra-cdktf && ENV=$(ENV) ../$(PY) main.py

LINTED := oms tests bench devenv infra-cdktf

lint: setup ## ruff (lint and format), mypy --strict, import-linter's layers, every test importable: part of make test
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy oms
	$(VENV)/bin/lint-imports
	@# a test module imports helper modules, never another test module (937ba3f broke one that did)
	@! grep -rnE '^(from|import) tests(\.[a-z_0-9]+)*\.test_[a-z_0-9]+' tests --include='*.py' \
		|| { echo "a test module imports another test module: move what they share to a helper module"; exit 1; }
	@# a test module importing a name another one no longer has (937ba3f did) fails lint, not only test
	@out=$$($(PY) -m pytest --collect-only -q tests 2>&1) || { echo "$$out" | tail -40; exit 1; }; echo "$$out" | tail -1
