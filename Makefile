# The two commands: `make dev` runs the whole stack, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test fuzz install browser-deps lint typecheck schema compose-file clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/unityplan dev $(if $(REPLICAS),--replicas $(REPLICAS))

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# Chromium (Debian's) and the pinned npm packages of the GraphiQL browser test.
browser-deps:
	@bash tests/browser/install.sh

# The fuzz test with a longer budget than `make test` gives it (FUZZ_EXAMPLES=N to change).
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LOG_LEVEL=WARNING $(BIN)/python -m pytest tests/e2e/test_fuzz.py -q -s

lint: $(STAMP)
	$(BIN)/ruff check core router subgraphs unityplan tests

typecheck: $(STAMP)
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/unityplan schema

# compose.yaml from the service registry (tests/deploy checks the committed one is current).
compose-file: $(STAMP)
	$(BIN)/python -m unityplan.compose_file > compose.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
