# stratacache: every target sets itself up (creates .venv, installs the package with the extras it needs).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; \
          done)
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test bench lint unasync clean help

help:
	@echo "make demo   - run 'stratacache demo' on embedded defaults (no server needed)"
	@echo "make test   - run the whole test suite"
	@echo "make bench  - run the benchmarks against peer libraries (results in benchmarks/results/)"
	@echo "make lint   - ruff, mypy --strict, import-linter, unasync --check"

$(BIN)/activate:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q -e ".[$(subst +,$(comma),$*)]"
	@touch $@

comma := ,

demo: $(VENV)/.installed-cli
	$(BIN)/stratacache demo

test: $(VENV)/.installed-all+test+lint
	@scripts/ensure-servers.sh
	$(PY) scripts/unasync.py --check
	$(PY) -m pytest

bench: $(VENV)/.installed-all+bench
	@scripts/ensure-servers.sh
	$(PY) -m benchmarks run l1 deco sqlite sqlite-scale redis hitrate memory metrics-overhead --out benchmarks/results/

lint: $(VENV)/.installed-all+test+lint
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(PY) scripts/unasync.py --check
	$(PY) scripts/gen_api_docs.py --check

unasync: $(VENV)/.installed-all+test+lint
	$(PY) scripts/unasync.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
