"""The benchmark script on a tiny file: every row of its table appears, and its built-in equality checks hold
(valid indices and kNN predictions identical to the seed-style implementations). Speed is `make bench`'s job."""

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_bench_table_on_tiny_inputs():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/bench.py"), "--rows", "300", "--knn-rows", "600",
         "--knn-sample", "60", "--repeats", "1", "--device", "cpu", "--batch-size", "32", "--reproduction-rows", "8",
         "--released-rows", "2", "--image-size", "152", "--simulate-galaxies", "60",
         "--properties-valid", "200", "--properties-train", "400", "--side-valid", "150", "--side-train", "300",
         "--explorer-rows", "300", "--posteriors-ensemble", "1", "--joint-epochs", "1", "--bootstrap", "100",
         "--budget-repeats", "1", "--representation-rows", "300", "--representation-dims", "16"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    measures = [line.split(" | ")[0].lstrip("| ") for line in table[2:]]
    counted = ("simulate", "properties", "posteriors", "joint posterior", "intervals", "budgets", "explorer", "zero_shot",
               "few_shot", "second k", "representation")
    measures = [m.split(", ")[0] if m.startswith(counted) else m for m in measures]  # counts vary
    assert measures == [
        "embedding, reference model: read floor (crop band, to device)",
        "embedding, reference model: compute floor (pre-loaded tensors)",
        "embedding, reference model: the embed step",
        "embedding, reproduction model, 8 rows: read floor (crop band, to device)",
        "embedding, reproduction model, 8 rows: compute floor (pre-loaded tensors)",
        "embedding, reproduction model, 8 rows: the embed step",
        "embedding, released model, 2 rows: read floor (crop band, to device)",
        "embedding, released model, 2 rows: compute floor (pre-loaded tensors)",
        "embedding, released model, 2 rows: the embed step",
        "valid indices, warm page cache (spectra + redshifts only)",
        "valid indices, cold page cache (spectra + redshifts only)",
        "chain: embeddings + valid indices",
        "kNN redshift, 4 combinations, 600 x 128",
        "explorer page",
        "zero_shot",
        "few_shot",
        "properties: 5 x 3 protocols x 4 pairs",
        "second k: zero_shot at k = [16",
        "posteriors: 6 labels x 2 modalities x 1 flows",
        "joint posterior",
        "intervals: 100 resamples of 200 rows",
        "budgets: 1 label x 6 fractions x 3 protocols x 2 modalities x 1 repeats",
        "representation: every measure",
        "simulate 60 galaxies (64px)",
        "snakemake -n, 7 models x 64 shards",
    ]
    assert all("x faster" in line for line in table if "valid indices" in line or "kNN" in line or "chain" in line)
