"""The full-size streaming check: run every step of the workflow on a file of the published shape (152x152 images,
39,599 validation rows, 380 of them invalid) and measure each step's peak memory and the bytes it reads.

    python benchmarks/fullsize.py                  # make fullsize: about 12 GB of disk in fullsize/
    python benchmarks/fullsize.py --valid-rows 3000 --source-galaxies 200 --limit-mb 700   # the test's size

Each step is one `snakemake` call for that step's output, in data-flow order, so a step runs alone with its inputs
already made. Peak memory is the largest resident set of any process in that call (snakemake itself, the step's
script, the notebook kernel), from the kernel's accounting when the call is reaped (`wait4`); the survey bytes a
step read are the file's pages in the page cache after the step, evicted before it (`fincore`). The
check fails (exit 1, one line per failure) when a step's peak exceeds `--limit-mb` plus the model's checkpoint size,
when the valid-row count or an output's shape is off, or when the similarity step reads more than the images it
draws could explain. The file is built by `benchmarks/tiled.py` (repeats a small simulation; see there).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import yaml
from tiled import write_tiled  # beside this script

from astroclip_eval.demo.simulate import SurveyConfig, simulate
from astroclip_eval.io.data import split_sizes
from astroclip_eval.models.reference import ReferenceAstroCLIP

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import evict  # noqa: E402  (one page-cache helper for both benchmarks)

PUBLISHED_VALID, PUBLISHED_INVALID = 39_599, 380
PUBLISHED_QUERIES = (300, 2650, 4253, 35171, 37886)
MODEL = "fullsize"
READAHEAD, METADATA = 256 * 1024, 16 * 2**20  # per drawn row, and per file, beyond the rows' own bytes


# Runs the step from a fresh, small interpreter: a child's peak-memory record starts from its parent's resident set
# at fork, so a step forked from this script (torch and the source simulation in memory) would inherit its size.
_MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
json.dump({"rc": os.waitstatus_to_exitcode(status), "peak": usage.ru_maxrss * 1024}, open(sys.argv[1], "w"))
"""


def resident(path: Path) -> int:
    """Bytes of the file in the page cache (util-linux fincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip())


def measured(cmd: list[str], log: Path, survey: Path) -> tuple[int, float, int, int]:
    """Run cmd; return its exit code, wall seconds, the peak resident bytes of its largest process, and the bytes of
    the survey file it read (pages resident afterwards, from an evicted start)."""
    os.sync()  # the file was just written: dirty pages are not evicted
    evict(survey)
    t0 = time.perf_counter()
    with log.open("w") as out:
        subprocess.run([sys.executable, "-c", _MEASURE, str(log.with_suffix(".json")), *cmd], stdout=out,
                       stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - t0
    result = json.loads(log.with_suffix(".json").read_text())
    return result["rc"], wall, result["peak"], resident(survey)


def write_model(path: Path, crop: int, dim: int) -> None:
    """An untrained reference model on the published crop, saved as a Lightning-style checkpoint (weights do not
    change memory or reads)."""
    torch.manual_seed(0)
    model = ReferenceAstroCLIP(embedding_dim=dim, image_crop=crop)
    torch.save({"epoch": 0, "state_dict": model.state_dict(), "hyper_parameters": dict(model.settings)}, path)


def queries(n_valid: int) -> list[int]:
    """The reproduction's query galaxies, scaled to a smaller file."""
    return [q * n_valid // PUBLISHED_VALID for q in PUBLISHED_QUERIES]


def build(args: argparse.Namespace, work: Path) -> tuple[Path, Path, int]:
    """The survey file, the checkpoint and the config (a file of the same shape from a previous run is reused)."""
    survey, ckpt = work / "survey.h5", args.checkpoint or work / "model.ckpt"
    n_invalid = args.zero_spectra + args.high_redshift
    if survey.exists():  # reuse a file built before, unless it has another shape
        with h5py.File(survey) as f:
            n_valid = sum(split_sizes(f[g]["images"].shape[0])[1] for g in f)
            if (n_valid, f["0"]["images"].shape[1]) != (args.valid_rows, args.image_size):
                survey.unlink()
    if not survey.exists():
        t0 = time.perf_counter()
        source = simulate(SurveyConfig(n_galaxies=args.source_galaxies, image_size=args.image_size, seed=args.seed,
                                       processes=args.processes)).columns
        write_tiled(survey, source, args.valid_rows, args.zero_spectra, args.high_redshift, keep=tuple(queries(args.valid_rows)),
                    seed=args.seed)
        print(f"built {survey} in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.checkpoint is None:
        write_model(ckpt, args.crop, args.embedding_dim)
    config = {
        "cache_dir": "cache",
        "results_dir": "results",
        "dataset": {"path": str(survey.resolve())},
        "models": {MODEL: {"checkpoint": str(Path(ckpt).resolve())}},
        "row_filter": {"z_min": 0.0, "z_max": 0.8},
        "protocols": {"run": ["reproduction"], "reproduction_neighbours": 16, "exclude_self": False},
        "similarity": {"query_indices": queries(args.valid_rows), "top_k": 3},
        "explorer": {"projections": args.explorer_projections},
        "embedding": {"batch_size": args.batch_size, "device": args.device, "shards": 1},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return survey, Path(ckpt), n_invalid


def steps() -> list[tuple[str, str]]:
    """(step, snakemake target) in data-flow order; the last builds everything else (summary and overview)."""
    return [
        ("promote", f"cache/{MODEL}/astroclip_model.ckpt"),
        ("embed", f"cache/{MODEL}/embedding_shards/0-of-1.pt"),
        ("merge_embeddings", f"cache/{MODEL}/image_embeddings.pt"),
        ("valid_indices", "cache/valid_indices.pt"),
        ("redshift_notebook", f"results/{MODEL}/redshift_r2.csv"),
        ("similarity_notebook", f"results/{MODEL}/similarity.csv"),
        ("explorer", f"results/{MODEL}/explorer.html"),
        ("notebook_html + summary", "all"),
    ]


def check_outputs(work: Path, n_valid: int, n_invalid: int, dim: int) -> list[str]:
    """What the outputs must be on this file: the known valid count, one embedding per row, the queries' matches."""
    failures = []
    summary = json.loads((work / "cache/valid_summary.json").read_text())
    if summary.get("n_valid") != n_valid - n_invalid:
        failures.append(f"cache/valid_summary.json: {summary.get('n_valid')} valid rows, expected {n_valid - n_invalid}")
    for modality in ("image", "spectrum"):
        emb = torch.load(work / f"cache/{MODEL}/{modality}_embeddings.pt", weights_only=True)
        if tuple(emb.shape) != (n_valid, dim):
            failures.append(f"cache/{MODEL}/{modality}_embeddings.pt: shape {tuple(emb.shape)}, expected {(n_valid, dim)}")
    table = pd.read_csv(work / f"results/{MODEL}/similarity.csv")
    if sorted(set(table["query"])) != queries(n_valid):
        failures.append(f"results/{MODEL}/similarity.csv: queries {sorted(set(table['query']))}, expected {queries(n_valid)}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "fullsize")
    parser.add_argument("--valid-rows", type=int, default=PUBLISHED_VALID)
    parser.add_argument("--zero-spectra", type=int, default=PUBLISHED_INVALID // 2)
    parser.add_argument("--high-redshift", type=int, default=PUBLISHED_INVALID - PUBLISHED_INVALID // 2)
    parser.add_argument("--image-size", type=int, default=152)
    parser.add_argument("--crop", type=int, default=96, help="the model's centre crop (the published setting: 96)")
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--source-galaxies", type=int, default=2000, help="galaxies simulated and repeated")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint to use instead of an untrained reference model")
    parser.add_argument("--limit-mb", type=float, default=2048, help="peak memory allowed per step, plus the model")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--explorer-projections", nargs="+", default=["pca", "tsne"], choices=["pca", "tsne"])
    parser.add_argument("--explorer-limit-mb", type=float, default=20, help="the explorer page's size aim")
    args = parser.parse_args(argv)
    if args.crop > args.image_size:
        parser.error(f"--crop {args.crop} is larger than --image-size {args.image_size}")

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    survey, ckpt, n_invalid = build(args, work)
    model_bytes = ckpt.stat().st_size
    limit = int(args.limit_mb * 2**20) + model_bytes
    with h5py.File(survey) as f:
        image_bytes = sum(f[g]["images"].id.get_storage_size() for g in f)
        row_bytes = (int(np.prod(f["0"]["images"].shape[1:])) + f["0"]["spectra"].shape[1]) * 4

    snakemake = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile",
                 str(work / "config.yaml"), "--cores", str(args.cores)]
    for old in ("cache", "results", ".snakemake"):  # outputs of an earlier run; the file and model are kept
        shutil.rmtree(work / old, ignore_errors=True)
    rows, failures = [], []
    for step, target in steps():
        rc, wall, peak, read = measured([*snakemake, target], work / "logs" / f"{step}.log", survey)
        rows.append((step, wall, peak, read))
        if rc != 0:
            print(f"{step}: snakemake failed (exit {rc}); see {work / 'logs' / f'{step}.log'}", file=sys.stderr)
            return 1
        if peak > limit:
            failures.append(f"{step}: peak memory {peak / 2**20:.0f} MiB exceeds {limit / 2**20:.0f} MiB "
                            f"({args.limit_mb:.0f} MiB plus the {model_bytes / 2**20:.1f} MiB model)")
    failures += check_outputs(work, args.valid_rows, n_invalid, args.embedding_dim)
    table = pd.read_csv(work / f"results/{MODEL}/similarity.csv")
    drawn = len(set(table["index"]) | set(table["query"]))
    allowed = drawn * (row_bytes + READAHEAD) + METADATA
    sim_read = {step: r for step, _, _, r in rows}["similarity_notebook"]
    if sim_read > allowed:
        failures.append(f"similarity_notebook: read {sim_read / 2**20:.1f} MiB of the survey; its {drawn} drawn galaxies "
                        f"explain at most {allowed / 2**20:.1f} MiB")

    page = (work / f"results/{MODEL}/explorer.html").stat().st_size
    if page > args.explorer_limit_mb * 1e6:
        failures.append(f"explorer: results/{MODEL}/explorer.html is {page / 1e6:.1f} MB, over {args.explorer_limit_mb} MB")

    print(f"\n### {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {args.device}\n")
    print(f"File: {args.valid_rows:,} validation rows ({args.zero_spectra} all-zero spectra, {args.high_redshift} "
          f"redshifts > 0.8), {args.image_size}x{args.image_size} images, {image_bytes / 2**30:.1f} GiB of validation "
          f"images on disk; model: reference, crop {args.crop}, dim {args.embedding_dim}, {model_bytes / 2**20:.1f} MiB; "
          f"limit {limit / 2**20:.0f} MiB per step.\n")
    print("| step | wall | peak memory (largest process) | survey file read |")
    print("| --- | --- | --- | --- |")
    for step, wall, peak, read in rows:
        print(f"| {step} | {wall:.1f} s | {peak / 2**20:,.0f} MiB | {read / 2**20:,.1f} MiB |")
    print(f"\nexplorer.html: {page / 1e6:.1f} MB ({', '.join(args.explorer_projections)})")
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
