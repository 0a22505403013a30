# `make book` and `make test` each create (or refresh, when pyproject.toml changes) the
# local virtual environment in .venv, then do their job.
#   make book                      # default profile (cpu): grid, results, HTML book
#   make book DATA=/path/to/cifar  # use a local CIFAR-10 copy instead of downloading
#   make book PROFILE=smoke        # a quick miniature
#   make test                      # the test suite
#   make bench                     # speed benchmarks -> benchmarks/results/
#   make plan PROFILE=paper DEVICE=h100  # predicted FLOPs and time (DEVICE: default here)
#   make gpu-check                 # first on a GPU: every stage, seconds and peak memory
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= cpu
DATA ?=
DEVICE ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DATA reaches every step (grid cells and the checks the book step executes) as the
# environment variable the project reads.
ifneq ($(DATA),)
export PAPERLIB_DATA := $(abspath $(DATA))
endif

.PHONY: book test venv grid lab bench plan gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

grid: $(STAMP)
	$(BIN)/python -m paperlib grid --profile $(PROFILE)

# A failed grid cell does not stop the book: its pages mark the missing cell, and
# make exits non-zero at the end.
book: $(STAMP)
	@start=$$(date +%s); grid=0; \
	$(BIN)/python -m paperlib grid --profile $(PROFILE) || grid=$$?; \
	$(BIN)/python -m paperlib book --profile $(PROFILE) && \
	$(BIN)/jupyter-book build . -W --keep-going && \
	echo "make book ($(PROFILE)) finished in $$(( $$(date +%s) - start )) s: open _build/html/index.html" && \
	if [ $$grid -ne 0 ]; then echo "some grid cells failed: see the summary above"; exit $$grid; fi

# JupyterLab is installed on first use: it is not needed to build or test, and it
# pins newer releases of some libraries than torchattacks declares.
lab: $(STAMP)
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet 'jupyterlab>=4.0,<5'
	$(BIN)/jupyter lab --notebook-dir=. notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest

# Speed is measured here, never in the tests: ratios against baselines run alongside.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

plan: $(STAMP)
	$(BIN)/python -m paperlib plan --profile $(PROFILE) $(if $(DEVICE),--device $(DEVICE))

# Five minutes on a GPU before a grid: every stage at smoke and paper sizes, with its
# seconds and peak memory; non-zero on any failure. Without a GPU, a dry run on the CPU.
gpu-check: $(STAMP)
	$(BIN)/python -m paperlib gpu-check

clean:
	rm -rf _build book/generated
