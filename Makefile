# make venv: .venv with the runtime dependencies only (what a cluster needs).
# make demo: bootstrap .venv, run the embedded demo end to end, build the report.
# make test: bootstrap .venv with the test dependencies too, install the system packages, run the whole test suite.
# make test-fast: the unit tests only (no workflow run, no system package; the inner loop, a few minutes).
# make system-packages: Chromium and SLURM for the end-to-end tests (root, apt-get; nothing when present).
# make bench: bootstrap .venv, run the benchmarks (benchmarks/README.md) and print their table.
# make fullsize: bootstrap .venv, run every step on a file of the published shape and check memory and reads (~12 GB in fullsize/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
CORES ?= 2

.PHONY: venv demo report test test-fast system-packages bench fullsize dry-run clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt -c constraints.txt
	touch $(TEST_STAMP)

# One thread per job, jobs side by side: on 2 cores 10 min instead of 12.5 (two-thread jobs ran one at a time), and
# the tables are those the test suite checks, digit for digit, whatever the number of cores (benchmarks/README.md).
demo: venv
	$(BIN)/snakemake --cores $(CORES) --max-threads 1
	$(MAKE) report

report: venv
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

dry-run: venv
	$(BIN)/snakemake -n

system-packages:
	tests/install-system-packages.sh

test: $(TEST_STAMP) system-packages
	$(BIN)/python -m pytest -v --durations=20 -n $(CORES) --dist loadgroup

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow" --durations=10 -n $(CORES)

bench: venv
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

fullsize: venv
	$(BIN)/python benchmarks/fullsize.py $(FULLSIZE_ARGS)

clean:
	rm -rf cache results out data/demo .snakemake
