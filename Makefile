# Two commands do everything (see README.md):
#   make demo   set up .venv and run the main job on built-in defaults
#   make test   set up .venv and run every test tier this machine can run (all but gpu)
# Also: make test-fast (no MPI, slow or notebook tiers), make bench, make figures, make lint.
#
# TORCH pins the torch build. The default takes the CPU wheel where pip finds one locally; a GPU
# user can run e.g. `make test TORCH="torch==2.13.0" PIP_EXTRA="--index-url https://download.pytorch.org/whl/cu126"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PIP_EXTRA ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradsync-installed

.PHONY: demo test test-fast bench lint figures clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_EXTRA) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gradsync demo

# pyproject's addopts select the fast tier for a bare `pytest`; the -m here overrides them.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu" -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Every notebook's figures into figures/ (not committed); the README's three key figures
# (paper study, interconnect, scale-out) are copied to docs/figures/, which is committed.
figures: $(STAMP)
	$(BIN)/python -m notebooks.render --out figures --size full --key-figures docs/figures

lint: $(STAMP)
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
