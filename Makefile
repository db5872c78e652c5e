# Mozart ETL — `make help` lists the targets. Everything installs from this repo.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed-stamp

# Where generated files go (source DB, lake, catalog, warehouse, Airflow home).
export MOZART_HOME ?= $(CURDIR)/.mozart
export MOZART_PROJECT_ROOT := $(CURDIR)
export AIRFLOW_HOME ?= $(MOZART_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export PATH := $(BIN):$(PATH)

.PHONY: help env demo up down browser test test-fast asof live chaos lint typecheck format manifests sync validate bench lock clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Runtime pins (requirements.txt, what the image installs) and the development
# tools on top (requirements-dev.txt: pytest, ruff, moto, playwright ...), both
# locked by `make lock`; requirements-overrides.txt leaves out what no process
# here needs (mysqlclient, a C build).
# stack/requirements-stack.txt (the FAB auth manager) too: the tenant access
# test runs Airflow with it, as the stack does.
REQUIREMENTS := requirements.txt requirements-dev.txt requirements-overrides.txt \
  stack/requirements-stack.txt
UV_OVERRIDE := --override requirements-overrides.txt

$(STAMP): $(REQUIREMENTS) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	# Compiled bytecode: this machine sets PYTHONDONTWRITEBYTECODE=1, and every
	# Airflow process start would otherwise pay seconds.
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode --quiet \
	  $(UV_OVERRIDE) -r requirements.txt -r requirements-dev.txt -r stack/requirements-stack.txt
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode --quiet --no-deps -e .
	@touch $@

env: $(STAMP) ## Build .venv (uv, pinned runtime + dev requirements, the package editable)
	@# Our own code is installed editable, so uv compiled none of it: every task
	@# process would compile it again (~0.06 s). Up-to-date files are skipped.
	@$(BIN)/python -m compileall -q include dags plugins > /dev/null

sync: env ## Generate each tenant's dbt sources from tenant.yaml
	$(BIN)/mozart sync

manifests: env ## Build each tenant's dbt manifest (dbt deps + parse)
	$(BIN)/mozart sync --check
	$(BIN)/mozart manifests

validate: env ## Check every tenants/*/tenant.yaml
	$(BIN)/mozart validate

$(AIRFLOW_HOME)/airflow.db: | $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log

demo: manifests $(AIRFLOW_HOME)/airflow.db ## Generate the demo source and run the demo DAG for one day
	$(BIN)/python -m mozart_etl.demo.run

up: manifests $(AIRFLOW_HOME)/airflow.db ## Local Airflow: scheduler, dag-processor, triggerer, UI on :8080 (MOZART_UP_PORT), pools made
	$(BIN)/python -m mozart_etl.ops.local_airflow up

down: ## Stop what `make up` started
	$(BIN)/python -m mozart_etl.ops.local_airflow down

lint: env ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: env ## mypy over the package and dags/ (settings: pyproject's [tool.mypy])
	$(BIN)/mypy

format: env ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser: ## Debian's chromium + chromedriver for the browser test (apt-get, only if missing)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

TEST_PATHS := tests/live $(filter-out tests/live/,$(wildcard tests/*/)) $(wildcard tests/test_*.py)
# Three workers on two cores: the live and browser groups (each its own
# Airflow deployment, minutes of waiting on its loops) leave part of a core
# idle, and the third worker uses it; a fourth measured no better (the cores
# are saturated: docs/performance.md, "The suite"). xdist hands out a file's
# tests (the browser package's) together, the groups with the most tests first.
TEST_WORKERS ?= 3
# The type check runs beside pytest, niced (its 40 s of one core fit in the
# time the workers wait on Airflow's scheduler, and it yields the cores to the
# tests); its output follows pytest's, and either failing fails the target
# (pytest's exit code 5, no tests, included).
test: lint manifests browser ## The whole suite (lint, type check and pytest against the real services)
	$(BIN)/mozart validate
	@mkdir -p $(MOZART_HOME)
	@nice -n 10 $(BIN)/mypy > $(MOZART_HOME)/typecheck.log 2>&1 & typecheck=$$!; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(TEST_PATHS); \
	tests=$$?; wait $$typecheck; typed=$$?; \
	echo "--- make typecheck (beside pytest):"; cat $(MOZART_HOME)/typecheck.log; \
	[ $$typed -eq 0 ] || echo "make test: the type check failed"; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

asof: manifests ## The as-of property alone (MOZART_ASOF_CASES=n cases, MOZART_ASOF_SEED=s replays one)
	$(BIN)/python -m pytest -n 2 tests/asof

live: manifests ## Live Airflow (scheduler, backfill, clear, pools, Celery): tests/live; `make test` runs it
	$(BIN)/python -m pytest tests/live

chaos: manifests ## Fault matrix (tests/reliability; `make test` runs it too): table of lost/dups/leaks
	@mkdir -p $(MOZART_HOME)
	MOZART_CHAOS_REPORT=$(MOZART_HOME)/chaos.md $(BIN)/python -m pytest tests/reliability -q

bench: manifests ## Benchmarks; figures go to docs/performance.md
	$(BIN)/python -m bench $(BENCH)

lock: env ## Re-resolve requirements.in and requirements-dev.in into their .txt files
	$(BIN)/uv pip compile requirements.in $(UV_OVERRIDE) --python-version 3.11 -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in $(UV_OVERRIDE) --python-version 3.11 -o requirements-dev.txt
	$(BIN)/uv pip compile stack/requirements-stack.in -c requirements.txt --python-version 3.11 \
	  -o stack/requirements-stack.txt

clean: ## Remove generated data (keeps .venv)
	rm -rf $(MOZART_HOME) tenants/*/dbt/target tenants/*/dbt/dbt_packages
