# Each target builds its own virtual environment when it is missing, so a fresh clone
# with only Python 3.11 and pip can run `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

EXAMPLE := build/example
DEMO    := build/demo-run

.PHONY: all venv test lint demo bench bench-large clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "segaudit needs Python 3.11 or newer: make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check segaudit tests examples benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

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
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/large_image.py

# Peak memory of one 8192x8192 image with 19 float16 classes (npy and zarr), target < 1 GiB.
bench-large: venv
	$(BIN)/python benchmarks/large_image.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
