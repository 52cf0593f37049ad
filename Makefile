# Hydite: `make dev` starts the whole stack, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := -e libs/common[embedded,db] -e services/controlplane -e services/dataplane -e services/spend-ingest
PROTO_OUT := libs/common/src

.PHONY: install dev test soak bench lint fmt proto proto-check migrate litellm-prices clean

$(STAMP): constraints.txt requirements-dev.txt libs/common/pyproject.toml services/*/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

dev: install
	$(BIN)/python -m hydite_common.devstack

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Long runs: the fuzz tests with thousands of examples per route.
soak: install
	$(BIN)/python -m pytest -m soak $(PYTEST_ARGS)

# wrk (Debian) drives the non-stream load and py-spy profiles the data plane; without them the
# proxy benchmark falls back to its Python load generator and skips the profile.
bench: install
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk))) || echo "wrk not installed; using the Python load generator"
	@test -x $(BIN)/py-spy || $(BIN)/python -m pip install -q --disable-pip-version-check py-spy || echo "py-spy not installed; no profile"
	$(BIN)/python -m bench.config_bench
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.proxy_bench $(PROXY_BENCH_ARGS)
	$(BIN)/python -m bench.limits_bench

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy conftest.py libs/common/src services/dataplane/src services/controlplane/src services/spend-ingest/src tests libs/common/tests services/dataplane/tests services/controlplane/tests bench
	@# services/spend-ingest is no package name, so mypy would name its conftest like the root one
	$(BIN)/mypy services/spend-ingest/tests

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

proto: install
	$(BIN)/python proto/generate.py $(PROTO_OUT)

proto-check: install
	$(BIN)/python -m pytest libs/common/tests/test_proto_stubs_current.py

migrate: install
	$(BIN)/hydite-controlplane migrate

# The vendored LiteLLM price table (libs/common/src/hydite_common/data/README.md).
LITELLM_VERSION ?= 1.110.2
litellm-prices: install
	$(BIN)/python scripts/refresh_litellm_prices.py $(LITELLM_VERSION)


clean:
	rm -rf $(VENV) .data
