# Two entry points for a new user: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit sysdeps bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Main job on the embedded default: SQLite file, in-process bus, offline agent.
# `exec` makes the server make's own child, and --exit-with-parent stops it whenever make
# dies: Ctrl-C, `kill` or even `kill -9` of make leaves no server behind.
run: $(STAMP)
	$(BIN)/threadline demo
	exec $(BIN)/threadline serve --exit-with-parent

sysdeps:
	bash scripts/sysdeps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Everything the tests need (system packages, broker, browser) is installed here.
test: sysdeps $(STAMP) lint typecheck
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# One table: each figure, its baseline in the same run, the ratio and the goal.
bench: $(STAMP) sysdeps
	$(BIN)/python -m benchmarks.table

# Under a minute; compares with benchmarks/recorded-quick.json (not part of `make test`).
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.table --quick

clean:
	rm -rf $(VENV) build *.egg-info threadline.db threadline.db.key
