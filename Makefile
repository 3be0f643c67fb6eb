# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make run` installs what the demo needs; `make test` adds the test toolchain.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench scale venv clean

venv: $(STAMP)

define create_venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "authmesh needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
endef

# Re-install whenever the dependencies change.
$(DEMO_STAMP): pyproject.toml
	$(create_venv)
	$(BIN)/python -m pip install -q -e '.[demo]'
	@touch $(DEMO_STAMP)

# The test extra includes the demo's, so it satisfies `make run` too.
$(STAMP): pyproject.toml
	$(create_venv)
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP) $(DEMO_STAMP)

run: $(DEMO_STAMP)
	$(BIN)/authmesh demo

lint: $(STAMP) typecheck
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

# axe-core checks the pages' accessibility in the browser tests.
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
$(AXE):
	npm install --no-save --silent --prefix $(VENV)/axe axe-core@4

test: $(STAMP) $(AXE) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# Replicas behind HAProxy under load with a kill, and 1,000 feed followers
# (needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379).
SCALE_STAMP := $(VENV)/.installed-scale
$(SCALE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,scale]'
	@touch $(SCALE_STAMP)

scale: $(SCALE_STAMP)
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || \
		{ apt-get update -q >/dev/null && apt-get install -y -q haproxy >/dev/null; }
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
