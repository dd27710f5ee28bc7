# Tiergate: `make run` starts the embedded stack, `make test` runs the tests.
# Both bootstrap .venv from nothing and are quick when it is already there.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test contract-test lint bench clean check cluster cluster-down

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo partner `acme` orders for customer account cus_0002 (docs/quickstart.md).
run: export TIERGATE_PARTNER_ACCOUNTS ?= acme=cus_0002
run: $(STAMP)
	$(BIN)/tiergate up

check: $(STAMP)
	$(BIN)/tiergate check

test: $(STAMP)
	bash scripts/test-prerequisites.sh
	bash scripts/redocly.sh install
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The full contract run: all seven APIs through the gateway, every schemathesis check and
# phase, >= 100 examples per operation, 0 failures (tests/contract/full_run.py).
contract-test: $(STAMP)
	$(BIN)/python -m tests.contract.full_run

# Redocly CLI (pinned in scripts/redocly.sh) installs itself into .tools/ once.
lint: $(STAMP)
	$(BIN)/ruff check gateway apis tests bench
	$(BIN)/ruff format --check gateway apis tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	bash scripts/redocly.sh lint

cluster: $(STAMP)
	bash deploy/cluster.sh up

cluster-down:
	bash deploy/cluster.sh down

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .tools
