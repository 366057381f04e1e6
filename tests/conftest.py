"""Shared fixtures: the two workflow runs the suite makes once (the full demo, for its science; the tiny test
config, for everything else) and small hand-built survey files whose every row is known."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from astroclip_eval.io.config import section_defaults
from astroclip_eval.io.plan import Protocols

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' own helpers (tiled.py) import as top-level modules
# Each pytest-xdist worker's workflows get its share of the machine: two workers each running two-thread jobs on two
# cores spend a quarter of their CPU time contending (two tiny runs at once: 2 min 39 s of CPU at --cores 2, 2 min 2 s
# at --cores 1). A serial pytest run keeps the demo's two cores.
CORES = max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
# The tests that run torch in-process take the same share: a worker's two OpenMP threads beside the other worker's
# workflow jobs made the joint-flow test take 206 s in the suite against 23 s alone (2026-12-07).
torch.set_num_threads(CORES)
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
os.environ["SLURM_CONF"] = str(ROOT / "tests/config/no-controller-slurm.conf")  # why: in that file
TINY_CONFIG = ROOT / "tests/config/config.yaml"
TINY_CORES = 2  # the SLURM jobs run with their rules' two threads; the tiny reference run uses the same, bit for bit


def snakemake(workdir: Path, *args: str, cores: int = CORES) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--cores", str(cores), "-d", str(workdir), *args], capture_output=True, text=True,
                          timeout=1500)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The embedded demo run end to end once for the whole session (the workflow and browser tests share it)."""
    work = tmp_path_factory.mktemp("demo")
    (work / "config").mkdir()
    shutil.copy(ROOT / "config/config.yaml", work / "config/config.yaml")
    # As `make demo` runs it, one thread per job (so its tables are make demo's, digit for digit), on every core: two
    # of its jobs run side by side whenever the other worker waits or has finished.
    run = snakemake(work, "--max-threads", "1", cores=os.cpu_count() or 1)
    assert run.returncode == 0, run.stderr[-4000:]
    return work


@pytest.fixture(scope="session")
def demo_report(demo) -> Path:
    """The demo's Snakemake report, built once (the workflow test reads it, the browser test opens it)."""
    run = snakemake(demo, "--report", "results/report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    return demo / "results/report.html"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """The tiny test config run end to end once, locally: its survey, trained run directory, embeddings and
    results are what the SLURM, resume and plug-in tests start from (copied, never remade)."""
    work = tmp_path_factory.mktemp("tiny")
    (work / "config").mkdir()
    shutil.copy(TINY_CONFIG, work / "config/config.yaml")
    run = snakemake(work, cores=TINY_CORES)
    assert run.returncode == 0, run.stderr[-4000:]
    return work


def protocols(**given) -> Protocols:
    """The protocols section as a config giving only `given` gets it (the rest the schema's defaults)."""
    return Protocols.of({**section_defaults(ROOT / "workflow/schemas/config.schema.yaml", "protocols"), **given})


def png_size(path: Path) -> tuple[int, int]:
    """A figure's width and height in pixels, read from the PNG, which must decode whole (a figure check reads what
    was drawn, not how many bytes it took)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG", path
        image.load()
        return image.size


def read_scoreboard(path: Path):
    """A summary/scoreboard.csv with its labels as written (a class or label named NA stays NA) and its numbers as
    numbers: an empty interval (a measure of the whole set of rows, RankMe) or baseline is NaN."""
    import pandas as pd

    board = pd.read_csv(path, keep_default_na=False)
    return board.assign(**{c: pd.to_numeric(board[c], errors="coerce") for c in ("value", "lo", "hi", "baseline")})


# The kinds that read the catalogues: the tiny run has them all; the tests that copy it to check how steps run (on
# SLURM, after a kill) leave them out, and the protocols fitted on the train split, since those steps run as the
# others do and the tiny run already checks them.
CATALOGUE_KINDS = ("catalogues", "properties", "classifications", "baselines", "posteriors", "budgets")


def tiny_config(every_kind: bool = True) -> dict:
    """The tiny test config; without `every_kind`, only the reproduction protocol (the validation split alone) and
    none of the kinds that read the catalogues."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    if every_kind:
        return config
    return {**{k: v for k, v in config.items() if k not in CATALOGUE_KINDS}, "protocols": {"run": ["reproduction"]}}


def copy_run(source: Path, dest: Path, *parts: str) -> Path:
    """A new work directory holding `tiny_config(every_kind=False)` and copies of `parts` of a finished run (e.g.
    "data", "out"), modification times kept, so Snakemake sees them as made and plans only what lies downstream."""
    (dest / "config").mkdir(parents=True)
    (dest / "config/config.yaml").write_text(yaml.safe_dump(tiny_config(every_kind=False)))
    for part in parts:
        shutil.copytree(source / part, dest / part, symlinks=True)
    return dest


def write_groups(path: Path, sizes: list[int], image_size: int = 16, spectrum_length: int = 7781) -> dict[str, np.ndarray]:
    """A published-layout file whose redshift of file row r is r / 1000 (so rows are identifiable)."""
    n = sum(sizes)
    rng = np.random.default_rng(0)
    cols = {
        "images": rng.normal(size=(n, image_size, image_size, 3)).astype(np.float32),
        "spectra": rng.normal(1.0, 0.1, size=(n, spectrum_length)).astype(np.float32),
        "redshifts": (np.arange(n) / 1000).astype(np.float32),
        "targetids": np.arange(n, dtype=np.int64) + 1000,
    }
    with h5py.File(path, "w") as f:
        lo = 0
        for g, size in enumerate(sizes):
            grp = f.create_group(str(g))
            for name, col in cols.items():
                grp.create_dataset(name, data=col[lo : lo + size])
            lo += size
    return cols


@pytest.fixture
def grouped_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "grouped.h5"
    return path, write_groups(path, [10, 7, 5])
