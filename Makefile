# make demo: bootstrap .venv, run the embedded demo end to end, build the report.
# make test: bootstrap .venv, run the whole test suite.
# make bench: bootstrap .venv, run the benchmarks (benchmarks/README.md) and print their table.
# make fullsize: bootstrap .venv, run every step on a file of the published shape and check memory and reads (~12 GB in fullsize/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: venv demo report test bench fullsize dry-run clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: venv
	$(BIN)/snakemake --cores $(CORES)
	$(MAKE) report

report: venv
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

dry-run: venv
	$(BIN)/snakemake -n

test: venv
	$(BIN)/python -m pytest -v

bench: venv
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

fullsize: venv
	$(BIN)/python benchmarks/fullsize.py $(FULLSIZE_ARGS)

clean:
	rm -rf cache results out data/demo .snakemake
