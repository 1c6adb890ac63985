# Each target builds its own virtual environment when it is missing, so a fresh clone
# with only Python 3.11 and pip can run `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CODE   := segaudit tests examples benchmarks

EXAMPLE := build/example
DEMO    := build/demo-run

.PHONY: all venv test quick lint format demo bench bench-large eval browser export-check clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "segaudit needs Python 3.11 or newer: make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# ruff (lint and format), mypy --strict on the package and the tests, the layering contract.
lint: venv
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider tests/test_layering.py

format: venv
	$(BIN)/ruff check --fix $(CODE)
	$(BIN)/ruff format $(CODE)

test: lint
	$(BIN)/python -m pytest

# The suite without the slow tests, for iterating.
quick: venv
	$(BIN)/python -m pytest -m "not slow"

demo: venv
	$(BIN)/python examples/make_example.py --out $(EXAMPLE)
	$(BIN)/segaudit score --labels $(EXAMPLE)/masks --probs $(EXAMPLE)/probs.zarr \
		--images $(EXAMPLE)/images --classes $(EXAMPLE)/classes.yaml --out $(DEMO) --top 10
	$(BIN)/segaudit report $(DEMO)
	@echo
	@echo "Report:   $(DEMO)/report.html (open it in a browser)"
	@echo "Ranking:  $(DEMO)/ranking.csv"
	@echo "Regions:  $(DEMO)/regions.csv"
	@echo "Overlays: $(DEMO)/overlays/"
	@echo "Injected errors (ground truth): $(EXAMPLE)/truth.json"

bench: venv
	$(BIN)/python -c 'import sklearn' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/large_image.py

# Peak memory of one 8192x8192 image with 19 float16 classes (npy and zarr), target < 1 GiB.
bench-large: venv
	$(BIN)/python benchmarks/large_image.py

# Detection benchmark (benchmarks/detection): data, a cross-validated model and the table,
# cached under build/detection. scikit-learn comes with the test extra; `bench` names it.
eval: venv
	$(BIN)/python -c 'import sklearn' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/detection/run.py

# Headless Chromium for the report's browser test (Debian's package; needs root). The test
# itself never installs anything: without Chromium it skips, and under CI=true it fails.
browser:
	@test -x /usr/bin/chromium || { \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@/usr/bin/chromium --version

# The CVAT and Label Studio exports read back by the tools' own libraries (datumaro,
# label-studio-sdk); they pin numpy below the test extra's, so they get a venv of their own.
EXPORT_VENV := build/venv-export
export-check:
	test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/python -m pip install --quiet -e '.[export-check]'
	SEGAUDIT_EXPORT_CHECK=1 $(EXPORT_VENV)/bin/python -m pytest -p no:cacheprovider tests/commands/test_export_tools.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
