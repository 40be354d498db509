# One entry point for people and CI. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast check lint typecheck serve bench db clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

demo: $(STAMP) ## Run the whole flow on synthetic data (SQLite, var/demo)
	$(BIN)/ovphub demo

postgres: ## Start the local PostgreSQL server if it is not running
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start

test: $(STAMP) postgres ## Full suite, PostgreSQL tests included
	$(BIN)/python -m pytest -q --cov=hub --cov=contracts --cov=validators --cov=publishers --cov-report=term:skip-covered

test-fast: $(STAMP) ## Quick local run: SQLite only
	$(BIN)/python -m pytest -q -m "not postgres and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck ## ruff + mypy

serve: $(STAMP) ## Start the API on http://127.0.0.1:8000 (OpenAPI at /docs)
	$(BIN)/ovphub serve

bench: $(STAMP) postgres ## Benchmarks; each prints JSON
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
