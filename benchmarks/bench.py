"""Measure the embedding step, the valid-row pass, the kNN redshift and the dry run against their floors and
against seed-style implementations, on data this script builds itself, and print one table.

    python benchmarks/bench.py                     # CPU defaults (make bench)
    python benchmarks/bench.py --device cuda --precision bf16 --architecture reproduction --rows 100000 \
        --reproduction-rows 20000 --released-rows 4000

Every ratio is measured side by side in one run on one machine. Times are wall-clock, warm page cache (the file
was just written), best of --repeats.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import yaml
from torch.utils.data import DataLoader

from astroclip_eval.embed import PRECISIONS, embed_split, prepare
from astroclip_eval.io.config import section_defaults
from astroclip_eval.io.data import SPECTRUM_LENGTH, Survey
from astroclip_eval.io.device import resolve_device
from astroclip_eval.io.plan import Protocols
from astroclip_eval.models.reference import ReferenceAstroCLIP
from astroclip_eval.models.released import Architecture, ReleasedAstroCLIP
from astroclip_eval.models.reproduction import ReproductionAstroCLIP
from astroclip_eval.tasks.downstream import MODALITIES
from astroclip_eval.tasks.explorer import build
from astroclip_eval.tasks.redshift import evaluate
from astroclip_eval.tasks.valid import valid_mask, valid_rows

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULTS = section_defaults(SCHEMA, "protocols")  # as a config leaving it out


def protocols(**given) -> Protocols:
    """The protocols section with `given` keys, the rest the schema's defaults."""
    return Protocols.of({**DEFAULTS, **given})


def best_of(repeats: int, fn: Callable[[], object], before: Callable[[], None] = lambda: None) -> float:
    """The shortest of `repeats` timings of fn(), each after before() (e.g. evicting the file from the page cache)."""
    times = []
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def build_survey(path: Path, n_rows: int, image_size: int, seed: int = 0, groups: int = 10) -> None:
    """A file in the published layout whose HDF5 chunks hold one whole image (as the published file's do).

    Contents are random (throughput does not depend on them): ~1% all-zero spectra, redshifts to 0.85.
    """
    rng = np.random.default_rng(seed)
    sizes = [n_rows // groups + (g < n_rows % groups) for g in range(groups)]
    with h5py.File(path, "w") as f:
        for g, n in enumerate(sizes):
            grp = f.create_group(str(g))
            images = grp.create_dataset("images", (n, image_size, image_size, 3), "f4", chunks=(1, image_size, image_size, 3))
            spectra = grp.create_dataset("spectra", (n, SPECTRUM_LENGTH), "f4", chunks=(1, SPECTRUM_LENGTH))
            for lo in range(0, n, 256):
                hi = min(lo + 256, n)
                images[lo:hi] = rng.normal(0.0, 0.05, (hi - lo, image_size, image_size, 3)).astype("f4")
                block = rng.normal(1.0, 0.5, (hi - lo, SPECTRUM_LENGTH)).astype("f4")
                block[rng.random(hi - lo) < 0.01] = 0.0
                spectra[lo:hi] = block
            grp["redshifts"] = rng.uniform(0.0, 0.85, n).astype("f4")
            grp["targetids"] = np.arange(n, dtype="i8") + g * 10**9


class SeedStyleDataset:
    """Row i of the validation split with every column, looked up by name per row and turned into tensors, the way
    a map-style torch Dataset over the published file serves a DataLoader."""

    columns = ("images", "spectra", "redshifts", "targetids")

    def __init__(self, path: Path):
        self.path, self.file = path, None  # opened lazily, once per DataLoader worker
        self.rows = []
        with h5py.File(path, "r") as f:
            for g in sorted(f, key=int):
                n = f[g]["redshifts"].shape[0]
                self.rows += [(g, i) for i in range(int(0.8 * n), n)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.file is None:
            self.file = h5py.File(self.path, "r")
        g, r = self.rows[i]
        return {c: torch.as_tensor(np.asarray(self.file[g][c][r])) for c in self.columns}


def seed_style_valid(path: Path, z_min: float, z_max: float) -> np.ndarray:
    """The seed's way to find valid rows: a second pass over the dataset, every column of every row, then the filter."""
    data = SeedStyleDataset(path)
    keep = []
    for i in range(len(data)):
        row = data[i]
        if valid_mask(row["spectra"].numpy()[None], row["redshifts"].numpy()[None], z_min, z_max)[0]:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (as far as the kernel lets an unprivileged process)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def seed_style_knn(
    query: np.ndarray, target: np.ndarray, z: np.ndarray, k: int, exclude_self: bool, rows: np.ndarray
) -> np.ndarray:
    """The seed's per-row kNN: for each query, cosine similarity to every target, a full sort, the mean of the top k."""
    out = np.empty(rows.size, dtype=np.float32)
    for j, i in enumerate(rows):
        sims = target @ query[i]
        if exclude_self:
            sims[i] = -np.inf
        out[j] = z[np.argsort(-sims, kind="stable")[:k]].mean()
    return out


# The original AstroCLIP's released model (its model spec, section 3): ViT-L/12 (1024 wide, 24 blocks in 4 chunks,
# 16 heads) on 144x144 crops, SpecFormer (768 wide, 6 layers, 6 heads), cross-attention heads of 4 heads, D = 1024.
RELEASED = Architecture(vit_dim=1024, vit_depth=24, vit_heads=16, patch=12,
                        chunks=[list(range(6 * c, 6 * c + 6)) for c in range(4)], spec_dim=768, spec_layers=6,
                        spec_heads=6, max_len=800, dim=1024, image_heads=4, spectrum_heads=4, image_kdim=1024,
                        spectrum_kdim=768)
MODELS = {
    "reference": lambda: ReferenceAstroCLIP(embedding_dim=128),
    "reproduction": lambda: ReproductionAstroCLIP(128, 128),  # ResNet-50 on 96x96 crops, spender on 7781 bins
    "released": lambda: ReleasedAstroCLIP(RELEASED),
}


def bench_model(architecture: str, device: torch.device) -> torch.nn.Module:
    """A built-in model at its real size with random weights: throughput does not depend on them."""
    torch.manual_seed(0)
    with torch.no_grad():
        model = MODELS[architecture]()
        for p in model.parameters():  # the released model's parameters are left uninitialised by its constructor
            p.normal_(0, 0.02)
    return prepare(model, device)


def bench_chain(args: argparse.Namespace, path: Path) -> list[tuple]:
    """Embeddings and valid indices end to end: this workflow's path against the seed's."""
    device = resolve_device(args.device)
    model = bench_model(args.architecture, device)
    workers = min(5, os.cpu_count() or 1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    @torch.no_grad()
    def seed() -> None:  # per-row dataset, DataLoader workers, whole images to the device (cropped there), fp32
        for batch in DataLoader(SeedStyleDataset(path), batch_size=args.batch_size, num_workers=workers):
            model.embed_images(batch["images"].to(device)).cpu()
            model.embed_spectra(batch["spectra"].to(device)).cpu()
        seed_style_valid(path, 0.0, 0.8)  # then a second pass over every column for the valid rows
        sync()

    def ours() -> None:
        with Survey(path) as survey:
            embed_split(model, survey, "valid", args.batch_size, device, args.precision, progress=False)
            valid_rows(survey, 0.0, 0.8)
        sync()

    t_ours, t_seed = best_of(args.repeats, ours), best_of(args.repeats, seed)
    return [("chain: embeddings + valid indices", f"{t_ours:.2f} s",
             f"{t_seed:.2f} s (per-row DataLoader, {workers} workers, fp32, crop on device, second pass)",
             f"{t_seed / t_ours:.1f}x faster", "GPU: >= 4x")]


def rate(per_second: float) -> str:
    """Galaxies per second, with a decimal where the rate is small (the full-size models on a CPU)."""
    return f"{per_second:,.0f} gal/s" if per_second >= 100 else f"{per_second:.2g} gal/s"


def bench_embedding(args: argparse.Namespace, path: Path, architecture: str, max_rows: int | None = None) -> list[tuple]:
    """The embed step against its read and compute floors, on the first `max_rows` validation rows."""
    device = resolve_device(args.device)
    model = bench_model(architecture, device)
    crop, batch = int(model.image_crop), args.batch_size
    dtype = PRECISIONS[args.precision]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with Survey(path) as survey:
        n = min(survey.n_rows("valid"), max_rows or survey.n_rows("valid"))

        def read_floor() -> None:  # bytes from the file (the centre-crop band only) to the device, nothing else
            for _, block in survey.iter_chunks("valid", ("images", "spectra"), batch, stop=n, crop=crop):
                for v in block.values():
                    t = torch.from_numpy(v)
                    t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t
            sync()

        images = torch.from_numpy(survey.read("valid", "images", stop=n, crop=crop)).to(device)
        spectra = torch.from_numpy(survey.read("valid", "spectra", stop=n)).to(device)

        @torch.no_grad()
        def compute_floor() -> None:  # the encoders on tensors already on the device
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                for lo in range(0, n, batch):
                    model.embed_images(images[lo : lo + batch]).float().cpu()
                    model.embed_spectra(spectra[lo : lo + batch]).float().cpu()
            sync()

        def embed() -> None:
            embed_split(model, survey, "valid", batch, device, args.precision, stop=n, progress=False)

        compute_floor()  # warm-up: kernels, allocator
        t_read = best_of(args.repeats, read_floor)
        t_compute = best_of(args.repeats, compute_floor)
        t_embed = best_of(args.repeats, embed)
    floor = min(n / t_read, n / t_compute)
    what = f"embedding, {architecture} model" + (f", {n:,} rows" if max_rows else "")
    return [
        (f"{what}: read floor (crop band, to device)", rate(n / t_read), "", "", ""),
        (f"{what}: compute floor (pre-loaded tensors)", rate(n / t_compute), "", "", ""),
        (f"{what}: the embed step", rate(n / t_embed), f"{rate(floor)} (min floor)",
         f"{(n / t_embed) / floor:.2f} of floor; {t_embed / t_compute:.2f}x compute time",
         "CPU: <= 1.5x compute time; GPU: >= 0.80 of floor"),
    ]


def bench_valid(args: argparse.Namespace, path: Path) -> list[tuple]:
    def ours() -> np.ndarray:
        with Survey(path) as survey:
            return valid_rows(survey, 0.0, 0.8)[0]

    def seed() -> np.ndarray:
        return seed_style_valid(path, 0.0, 0.8)

    np.testing.assert_array_equal(ours(), seed())  # same rows
    rows = []
    for cache, prepare_cache in (("warm", lambda: None), ("cold", lambda: evict(path))):
        t_ours = best_of(args.repeats, ours, prepare_cache)
        t_seed = best_of(args.repeats, seed, prepare_cache)
        rows.append((f"valid indices, {cache} page cache (spectra + redshifts only)", f"{t_ours:.3f} s",
                     f"{t_seed:.3f} s (every column, row by row)", f"{t_seed / t_ours:.1f}x faster", ">= 10x"))
    return rows


def bench_knn(args: argparse.Namespace) -> list[tuple]:
    rng = np.random.default_rng(1)
    n, d, k = args.knn_rows, 128, 16
    z = rng.uniform(0, 0.8, n).astype(np.float32)
    base = rng.normal(size=(n, d)).astype(np.float32)
    base[:, :4] += 6 * (z[:, None] - 0.4)
    emb = {m: base + s * rng.normal(size=(n, d)).astype(np.float32) for m, s in (("spectrum", 0.5), ("image", 1.0))}
    emb = {m: (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32) for m, e in emb.items()}
    valid = np.arange(n)
    torch.set_num_threads(os.cpu_count() or 1)
    knn = protocols(reproduction_neighbours=k, exclude_self=True)
    t_ours = best_of(args.repeats, lambda: evaluate(emb, z, valid, knn))
    _, _, predictions = evaluate(emb, z, valid, knn)
    rows = np.random.default_rng(2).choice(n, min(args.knn_sample, n), replace=False)
    t_seed = 0.0
    for q in MODALITIES:
        for t in MODALITIES:
            t0 = time.perf_counter()
            seed = seed_style_knn(emb[q], emb[t], z, k, q == t, rows)
            t_seed += (time.perf_counter() - t0) * n / rows.size  # per-query time, scaled to all n queries
            np.testing.assert_allclose(predictions[("reproduction", q, t)][rows], seed, rtol=1e-6)  # same predictions
    return [
        (
            f"kNN redshift, 4 combinations, {n:,} x {d}",
            f"{t_ours:.2f} s",
            f"{t_seed:.1f} s (per-row loop, from {rows.size:,} queries)",
            f"{t_seed / t_ours:.1f}x faster",
            ">= 3x, same predictions",
        )
    ]


def bench_explorer(args: argparse.Namespace, tmp: Path) -> list[tuple]:
    """The explorer page at the published row count: a flat file of `--explorer-rows` rows (noise cut-outs, the worst
    case for JPEG; 64 px, not 152, to spare the disk: thumbnails are 32 px either way) and 128-d embeddings with a
    redshift trend and noise, so that neighbours spread over many rows (a large page). Time and size of `build`."""
    n, rng = args.explorer_rows, np.random.default_rng(5)
    path = tmp / "explorer.h5"
    z = rng.uniform(0, 0.8, n).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("image", shape=(n, 64, 64, 3), dtype=np.float32)
        f.create_dataset("spectrum", shape=(n, 7781), dtype=np.float32)
        for lo in range(0, n, 2000):
            hi = min(lo + 2000, n)
            f["image"][lo:hi] = rng.normal(0, 0.02, size=(hi - lo, 64, 64, 3))
            f["spectrum"][lo:hi] = rng.normal(1, 0.3, size=(hi - lo, 7781))
        f["redshift"], f["targetid"] = z, np.arange(n, dtype=np.int64) + 39_627_000_000_000_000
    base = rng.normal(size=(n, 128)).astype(np.float32)
    base[:, :4] += 6 * (z[:, None] - 0.4)
    emb = {m: base + s * rng.normal(size=(n, 128)).astype(np.float32) for m, s in (("spectrum", 0.5), ("image", 1.0))}
    settings = {"max_galaxies": 2000, "projections": ["pca", "tsne"], "thumbnail": 32, "spectrum_bins": 128, "seed": 0,
                "query_indices": [300, 2650], "top_k": 3, "exclude_self": True, "rows": "valid"}
    evict(path)
    t0 = time.perf_counter()
    with Survey(path) as survey:
        html, summary = build("bench", survey, emb, np.arange(n), settings)
    wall = time.perf_counter() - t0
    return [(
        f"explorer page, {summary['drawn']:,} of {n:,} rows drawn, {summary['galaxies']:,} galaxies in it (PCA + t-SNE, top 3)",
        f"{wall:.0f} s, {summary['bytes'] / 1e6:.1f} MB",
        "-",
        "-",
        "< 20 MB",
    )]


PROPERTY_NAMES = ["LOG_MSTAR", "Z_MW", "TAGE_MW", "AVG_SFR", "sSFR"]


def synthetic_split(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """128-d embeddings of two modalities that carry 5 standard-normal properties (the image's noisier), and the
    properties' table; 1% of LOG_MSTAR missing, as a `valid:` range leaves it, so it has row sets of its own."""
    truth = rng.normal(size=(n, 5))
    base = rng.normal(size=(n, 128)).astype(np.float32)
    base[:, :5] += 2 * truth
    emb = {m: base + s * rng.normal(size=(n, 128)).astype(np.float32) for m, s in (("spectrum", 0.5), ("image", 1.0))}
    table = pd.DataFrame(truth, columns=PROPERTY_NAMES)
    table.loc[rng.uniform(size=n) < 0.01, "LOG_MSTAR"] = np.nan
    return emb, table


def _properties_child(n_valid: int, n_train: int, device: str, out) -> None:
    """evaluate_all on synthetic embeddings in a process of its own (its peak memory is its own): 5 properties,
    3 protocols, 4 pairs each, as the properties notebook runs them."""
    import resource

    from astroclip_eval.tasks import downstream

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(3)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, n_valid), synthetic_split(rng, n_train)
    t0 = time.perf_counter()
    downstream.evaluate_all(PROPERTY_NAMES, [], v_emb, v_table, np.arange(n_valid), t_emb, t_table, np.arange(n_train),
                            protocols(run=["reproduction", "zero_shot", "few_shot"]),
                            device=resolve_device(device, "--device"))
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_downstream(args: argparse.Namespace) -> list[tuple]:
    """The property step's two trained protocols side by side at `--side-valid` x `--side-train` rows (1/8 of the
    published size by default): zero_shot against scikit-learn's StandardScaler + KNeighborsRegressor(64, distance)
    on the same inputs (the R^2 must agree to 1e-6), with the float32 floor (the screen's products and top-k
    alone); few_shot against the previous recipe (full-batch Adam, 200 steps), scores over --repeats seeds."""
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    from astroclip_eval.tasks import downstream
    from astroclip_eval.tasks.neighbours import SCREEN_EXTRA
    from astroclip_eval.tasks.protocols import RECIPES, Recipe

    device = resolve_device(args.device, "--device")
    rng = np.random.default_rng(3)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, args.side_valid), synthetic_split(rng, args.side_train)
    v_rows, t_rows = np.arange(args.side_valid), np.arange(args.side_train)

    def ours(protocol: str, recipe: str = "project", seed: int = 0, draws: int = 1000) -> pd.DataFrame:
        return downstream.evaluate_all(PROPERTY_NAMES, [], v_emb, v_table, v_rows, t_emb, t_table, t_rows,
                                       protocols(run=[protocol], few_shot_seed=seed, few_shot_recipe=recipe),
                                       device=device, draws=draws)[0]

    def theirs() -> pd.DataFrame:  # what a user of the original's code runs, at its best: one multi-output fit per
        out = []                   # row set (properties known on the same rows) and target, so the same 8 searches
        groups: dict[bytes, list[str]] = {}
        for name in PROPERTY_NAMES:
            groups.setdefault(t_table[name].notna().to_numpy().tobytes() + v_table[name].notna().to_numpy().tobytes(),
                              []).append(name)
        for names in groups.values():
            v_have, t_have = v_table[names[0]].notna().to_numpy(), t_table[names[0]].notna().to_numpy()
            for target in MODALITIES:
                scaler = StandardScaler().fit(t_emb[target][t_have])
                knn = KNeighborsRegressor(64, weights="distance").fit(scaler.transform(t_emb[target][t_have]),
                                                                      t_table[names][t_have])
                for query in MODALITIES:
                    pred = knn.predict(scaler.transform(v_emb[query][v_have]))
                    out += [{"property": name, "query": query, "target": target,
                             "r2": downstream.r2_score(v_table[name][v_have], pred[:, j])} for j, name in enumerate(names)]
        return pd.DataFrame(out)

    def floor() -> None:  # the float32 screen's products and top-k over every (query, target) pair and row set
        for have in ({"rows": slice(None)}, {"rows": t_table["LOG_MSTAR"].notna().to_numpy()}):
            for target in MODALITIES:
                t = torch.as_tensor(t_emb[target][have["rows"]], device=device)
                products = torch.empty((4096, t.shape[0]), device=device)
                for query in MODALITIES:
                    for q in torch.as_tensor(v_emb[query], device=device).split(4096):
                        torch.topk(torch.mm(q, t.T, out=products[: q.shape[0]]), 64 + SCREEN_EXTRA, dim=1, sorted=False)

    timed: dict[str, float] = {}
    results: dict[str, pd.DataFrame] = {}
    # like for like: scikit-learn's predictions and R^2 against ours with one bootstrap resample (the intervals,
    # which it does not compute, timed apart)
    for name, fn in (("ours", lambda: ours("zero_shot", draws=1)), ("theirs", theirs), ("floor", floor),
                     ("intervals", lambda: ours("zero_shot"))):
        timed[name] = best_of(args.repeats, lambda fn=fn, name=name: results.__setitem__(name, fn()))
    merged = results["ours"].merge(results["theirs"], on=["property", "query", "target"], suffixes=("", "_sk"))
    gap = float((merged["r2"] - merged["r2_sk"]).abs().max())
    assert len(merged) == 20 and gap < 1e-6, f"zero_shot R^2 differ from scikit-learn's by {gap}"

    RECIPES["before"] = Recipe(torch.nn.GELU, 0.0, 3e-3, 1e-4, batch=2**62, epochs=200)
    few: dict[str, list[tuple[float, float]]] = {"project": [], "before": []}
    for recipe in few:
        for seed in range(args.repeats):
            t0 = time.perf_counter()
            table = ours("few_shot", recipe, seed)
            few[recipe].append((time.perf_counter() - t0, float(table["r2"].mean())))
    del RECIPES["before"]
    (t_new, r_new), (t_old, r_old) = (np.array(few[r]).T for r in ("project", "before"))
    size = f"{args.side_valid:,} valid x {args.side_train:,} train rows"
    return [
        (
            f"zero_shot, 5 properties x 4 pairs, {size}",
            f"{timed['ours']:.2f} s (float32 products + top-k alone: {timed['floor']:.2f} s; with the 95% intervals "
            f"of 1,000 resamples: {timed['intervals']:.2f} s)",
            f"{timed['theirs']:.2f} s (scikit-learn StandardScaler + KNeighborsRegressor(64, distance), one multi-output "
            "fit per row set and target)",
            f"{timed['theirs'] / timed['ours']:.2f}x faster",
            f">= 1x (the issue's bar: scikit-learn on the float32 embeddings as they come); R^2 equal to 1e-6 (max "
            f"difference {gap:.0e}), the neighbours a float64 search's",
        ),
        (
            f"few_shot, 5 properties x 4 pairs, {size}",
            f"{t_new.mean():.1f} s, mean R^2 {r_new.mean():.4f} +- {r_new.std():.4f} ({len(r_new)} seeds)",
            f"{t_old.mean():.1f} s, mean R^2 {r_old.mean():.4f} +- {r_old.std():.4f} (full-batch Adam, 200 steps)",
            f"{t_old.mean() / t_new.mean():.1f}x faster",
            ">= 3x, scores within the spread",
        ),
    ]


def _second_k_child(n_valid: int, n_train: int, neighbours: int | list[int], device: str, out) -> None:
    """zero_shot on the 5 synthetic properties at one k or a list, intervals included, as the notebook runs it."""
    from astroclip_eval.tasks import downstream

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(3)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, n_valid), synthetic_split(rng, n_train)
    t0 = time.perf_counter()
    downstream.evaluate_all(PROPERTY_NAMES, [], v_emb, v_table, np.arange(n_valid), t_emb, t_table, np.arange(n_train),
                            protocols(run=["zero_shot"], zero_shot_neighbours=neighbours),
                            device=resolve_device(device, "--device"))
    out.put((time.perf_counter() - t0,))


def bench_second_k(args: argparse.Namespace) -> list[tuple]:
    """What a second k costs: zero_shot with zero_shot_neighbours [16, 64] (one search at 64, a prefix for 16)
    against 64 alone, 5 properties x 4 pairs with their intervals, at the property benchmark's size."""
    size = (args.properties_valid, args.properties_train)
    (one,) = in_child(_second_k_child, *size, 64, args.device)
    (two,) = in_child(_second_k_child, *size, [16, 64], args.device)
    return [(
        f"second k: zero_shot at k = [16, 64] against 64 alone, 5 properties x 4 pairs, {size[0]:,} valid x "
        f"{size[1]:,} train rows",
        f"{two:.1f} s", f"{one:.1f} s (k = 64 alone)", f"{two / one:.2f}x the time", "one search: well under 2x",
    )]


def in_child(target: Callable, *args: object) -> tuple:
    """Run target(*args, queue) in a process of its own (its peak memory is its own) and return what it put on the
    queue. The process is forked from a server that imported this script's modules once: the same modules a spawned
    process imports, without its ~3 s of importing them again each time."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__"])
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the benchmark's process for {target.__name__} failed (exit {child.exitcode}); its traceback "
                         "is above")
    return queue.get()


def bench_properties(args: argparse.Namespace) -> list[tuple]:
    """The property step (5 properties x 3 protocols x 4 pairs) at the published size, time and peak memory."""
    wall, peak = in_child(_properties_child, args.properties_valid, args.properties_train, args.device)
    return [
        (
            f"properties: 5 x 3 protocols x 4 pairs, {args.properties_valid:,} valid x {args.properties_train:,} train rows",
            f"{wall:.0f} s, peak {peak:,.0f} MiB",
            *(("2,367 s, peak 1,851 MiB (2 cores, 2026-11-29, before issue 32)", f"{2367 / wall:.1f}x faster")
              if (args.properties_valid, args.properties_train) == (39_599, 158_396) else ("-", "-")),
            "< 6 min, < 2 GiB on 2 cores",
        )
    ]


def _posteriors_child(n_valid: int, n_train: int, ensemble: int, device: str, out) -> None:
    """The posterior step on synthetic embeddings in a process of its own: 6 labels (the 5 properties and a redshift-
    like one) x 2 query modalities, each an ensemble of flows with the default settings, as the notebook runs them."""
    import resource

    from astroclip_eval.tasks.posteriors import FlowSettings, estimate

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(4)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, n_valid), synthetic_split(rng, n_train)
    for table in (v_table, t_table):
        table["redshift"] = 0.4 / (1 + np.exp(-table["Z_MW"]))  # in (0, 0.4), as the valid rows' redshifts are
    settings, where = FlowSettings(ensemble=ensemble), resolve_device(device, "--device")
    t0, fits = time.perf_counter(), 0
    for label in ["redshift", *PROPERTY_NAMES]:
        v_have, t_have = v_table[label].notna().to_numpy(), t_table[label].notna().to_numpy()
        for modality in MODALITIES:
            estimate(label, modality, t_emb[modality][t_have], t_table[label].to_numpy()[t_have],
                     v_emb[modality][v_have], v_table[label].to_numpy()[v_have], settings, device=where)
            fits += ensemble
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, fits))


def bench_posteriors(args: argparse.Namespace) -> list[tuple]:
    """The posterior step (6 labels x 2 modalities, ensembles of --posteriors-ensemble flows) at the published size,
    time and peak memory."""
    wall, peak, fits = in_child(_posteriors_child, args.properties_valid, args.properties_train,
                                args.posteriors_ensemble, args.device)
    return [
        (
            f"posteriors: 6 labels x 2 modalities x {args.posteriors_ensemble} flows, {args.properties_valid:,} valid x "
            f"{args.properties_train:,} train rows",
            f"{wall:.0f} s ({wall / fits:.1f} s per flow), peak {peak:,.0f} MiB",
            "-",
            "-",
            "fits the rule's 30 min and 2.5 GB per attempt",
        )
    ]


def _joint_child(n_valid: int, n_train: int, epochs: int, device: str, out) -> None:
    """The joint preset's pieces on synthetic embeddings, in a process of its own: one flow over 4 labels trained
    `epochs` epochs as the preset trains it (batches of 128 from 5e-4), then the whole estimate with one flow of one
    epoch (training, the validation rows' densities, samples and marginals)."""
    import resource

    from astroclip_eval.tasks.posteriors import estimate_joint, fit_member, joint_settings

    torch.set_num_threads(os.cpu_count() or 1)
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    section = schema["properties"]["posteriors"]["properties"]
    preset = {k: v["default"] for k, v in section["joint"]["properties"].items() if "default" in v}
    rng = np.random.default_rng(6)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, n_valid), synthetic_split(rng, n_train)
    labels, where = ["Z_MW", "TAGE_MW", "AVG_SFR", "sSFR"], resolve_device(device, "--device")
    x, y = t_emb["spectrum"], t_table[labels].to_numpy()
    shape = {k: v["default"] for k, v in section.items() if k in ("transforms", "hidden", "bins", "samples")}
    settings = joint_settings({**shape, "joint": {**preset, "epochs": epochs}})
    t0 = time.perf_counter()
    fit_member("joint", (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0), 0, settings, where)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimate_joint(labels, "spectrum", x, y, v_emb["spectrum"], v_table[labels].to_numpy(),
                   joint_settings({**shape, "joint": {**preset, "ensemble": 1, "epochs": 1}}), device=where)
    out.put((fit / epochs, time.perf_counter() - t0 - fit / epochs, preset,
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_joint(args: argparse.Namespace) -> list[tuple]:
    """The joint posterior preset (posteriors.joint: the original's 10 flows x 25 epochs, both modalities) at the
    property benchmark's size, extrapolated from one flow's measured epochs and the scoring of one modality (its
    samples per row are split among the flows, so one flow's scoring stands for the ensemble's, less the other
    flows' densities): its cost beside the 1-D posteriors' (the posteriors row)."""
    epoch, scoring, preset, peak = in_child(_joint_child, args.properties_valid, args.properties_train,
                                            args.joint_epochs, args.device)
    flows = preset["ensemble"]
    total = 2 * (flows * preset["epochs"] * epoch + scoring)  # the samples per row are shared among the flows
    return [(
        f"joint posterior, the preset ({flows} flows x {preset['epochs']} epochs x 2 modalities, 4 labels), "
        f"{args.properties_valid:,} valid x {args.properties_train:,} train rows",
        f"{total / 60:.0f} min by extrapolation: {epoch:.1f} s per epoch ({args.joint_epochs} measured), "
        f"{scoring:.0f} s scoring per modality; peak {peak:,.0f} MiB",
        "-", "-", "a GPU job, or a longer runtime than the rule's 30 min",
    )]


def _intervals_child(n_valid: int, draws: int, out) -> None:
    """The intervals the redshift and property steps add at the published size: 12 redshift rows (R^2, bias,
    sigma_NMAD, sigma68, outlier fraction) and 60 property R^2 rows (5 properties x 3 protocols x 4 pairs)."""
    import resource

    from astroclip_eval.tasks import bootstrap
    from astroclip_eval.tasks.redshift import redshift_metrics

    rng = np.random.default_rng(5)
    truth = rng.uniform(0.01, 0.8, n_valid)
    pred = truth + rng.normal(0, 0.03, n_valid) * (1 + truth)
    t0 = time.perf_counter()
    for _ in range(12):
        bootstrap.bounds(bootstrap.r2, (truth, pred), draws)
        redshift_metrics(truth, pred, draws)
    redshift = time.perf_counter() - t0
    for _ in range(60):
        bootstrap.bounds(bootstrap.r2, (truth, pred), draws)
    out.put((redshift, time.perf_counter() - t0 - redshift, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_intervals(args: argparse.Namespace) -> list[tuple]:
    """The bootstrap intervals at the published size, time and peak memory."""
    redshift, properties, peak = in_child(_intervals_child, args.properties_valid, args.bootstrap)
    return [
        (
            f"intervals: {args.bootstrap} resamples of {args.properties_valid:,} rows, 12 redshift rows x 5 scores + "
            "60 property R^2",
            f"{redshift:.0f} s (redshift) + {properties:.0f} s (properties), peak {peak:,.0f} MiB",
            "-",
            "-",
            "a small share of the steps' minutes",
        )
    ]


def _budgets_child(n_valid: int, n_train: int, repeats: int, device: str, out) -> None:
    """One label's budget curves (6 fractions x 3 protocols x 2 modalities x `repeats`) on synthetic embeddings."""
    import resource

    from astroclip_eval.tasks.budgets import Budget, evaluate

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(6)
    (v_emb, v_table), (t_emb, t_table) = synthetic_split(rng, n_valid), synthetic_split(rng, n_train)
    t0 = time.perf_counter()
    evaluate("Z_MW", v_emb, v_table["Z_MW"].to_numpy(), np.arange(n_valid), t_emb, t_table["Z_MW"].to_numpy(),
             np.arange(n_train), Budget.of({**section_defaults(SCHEMA, "budgets"), "repeats": repeats}), protocols(),
             device=resolve_device(device, "--device"))
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def bench_budgets(args: argparse.Namespace) -> list[tuple]:
    """The label-budget step for one label at the published size, time and peak memory."""
    wall, peak = in_child(_budgets_child, args.properties_valid, args.properties_train, args.budget_repeats, args.device)
    return [
        (
            f"budgets: 1 label x 6 fractions x 3 protocols x 2 modalities x {args.budget_repeats} repeats, "
            f"{args.properties_valid:,} valid x {args.properties_train:,} train rows",
            f"{wall:.0f} s, peak {peak:,.0f} MiB",
            "-",
            "-",
            "fits the rule's 60 min and 4 GB per attempt, per label",
        )
    ]


def _representation_child(n_valid: int, dims: int, device: str, out) -> None:
    """The representation step's measures on synthetic unit embeddings of n_valid rows and `dims` dimensions (their
    variance falling over the directions, the modalities related) with a redshift-like label, in a process of its
    own: wall time and peak memory."""
    import resource

    from astroclip_eval.tasks.representation import measure

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(5)
    scale = 1 / np.arange(1, dims + 1)  # a falling spectrum, as trained embeddings have
    image = (rng.normal(size=(n_valid, dims)) * scale).astype(np.float32)
    spectrum = (0.6 * image + 0.4 * rng.normal(size=(n_valid, dims)) * scale).astype(np.float32)
    redshift = np.abs(image[:, 0]) + 0.1 * rng.random(n_valid)
    t0 = time.perf_counter()
    table, _ = measure({"image": image, "spectrum": spectrum}, np.arange(n_valid), {"redshift": redshift}, 10,
                       "bench", device=resolve_device(device, "--device"))
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(table)))


def bench_representation(args: argparse.Namespace) -> list[tuple]:
    """The representation step (every measure, one label) at the published size, 128-d and 1,024-d: time and peak
    memory (the target is the issue's, for 128-d)."""
    rows = []
    for dims in args.representation_dims:
        wall, peak, _ = in_child(_representation_child, args.representation_rows, dims, args.device)
        rows.append((
            f"representation: every measure, {args.representation_rows:,} valid rows x {dims}-d, 1 label",
            f"{wall:.1f} s, peak {peak:,.0f} MiB", "-", "-",
            "< 1 min, < 1 GiB on 2 cores" if dims == 128 else "-",
        ))
    return rows


def bench_simulate(args: argparse.Namespace) -> list[tuple]:
    """The demo's simulate step with the redshift-success selection, against its 60 s budget for 8,000 galaxies."""
    from astroclip_eval.demo.simulate import SurveyConfig, simulate

    t0 = time.perf_counter()
    survey = simulate(SurveyConfig(n_galaxies=args.simulate_galaxies, processes=os.cpu_count() or 1))
    took = time.perf_counter() - t0
    budget = 60.0 * args.simulate_galaxies / 8000
    attrs = survey.attrs
    return [
        (
            f"simulate {args.simulate_galaxies:,} galaxies (64px), {attrs['selection_candidates']:,} candidates fitted, "
            f"{attrs['selection_kept_fraction']:.0%} kept",
            f"{took:.1f} s",
            f"{budget:.0f} s budget",
            f"{took / budget:.2f} of the budget",
            "< 60 s for 8,000 on 2 cores",
        )
    ]


def bench_dry_run(args: argparse.Namespace, workdir: Path) -> list[tuple]:
    (workdir / "config").mkdir()
    (workdir / "ckpt").mkdir()
    (workdir / "survey.h5").touch()
    models = {}
    for i in range(7):
        (workdir / f"ckpt/m{i}.ckpt").touch()
        models[f"m{i}"] = {"checkpoint": f"ckpt/m{i}.ckpt"}
    config = {"dataset": {"path": "survey.h5"}, "models": models, "embedding": {"shards": 64}}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "-n",
        "--cores",
        "2",
        "--quiet",
        "all",
    ]
    # The SLURM executor plugin asks `scontrol show config` when it is imported; where the SLURM client is installed
    # but no controller answers (a workstation), that waits ~9 s. A stub that fails at once stands in for it, as
    # on a machine without SLURM or a login node whose controller answers in milliseconds.
    stub = workdir / "stub"
    stub.mkdir()
    (stub / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (stub / "scontrol").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}

    def dry() -> None:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=env)

    t = best_of(args.repeats, dry)
    return [("snakemake -n, 7 models x 64 shards", f"{t:.2f} s", "", "", "< 5 s on 2 cores")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the built file (20%% are the validation split)")
    parser.add_argument("--image-size", type=int, default=152)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="32", choices=sorted(PRECISIONS))
    parser.add_argument("--architecture", default="reference", choices=sorted(MODELS),
                        help="the model of the chain benchmark")
    parser.add_argument("--reproduction-rows", type=int, default=256,
                        help="validation rows embedded by the reproduction's model (ResNet-50: slow on a CPU)")
    parser.add_argument("--released-rows", type=int, default=16,
                        help="validation rows embedded by the released AstroCLIP (ViT-L + SpecFormer: slower still)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--knn-rows", type=int, default=40_000)
    parser.add_argument("--knn-sample", type=int, default=1_000, help="queries timed for the per-row loop")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--simulate-galaxies", type=int, default=8000, help="galaxies of the simulate benchmark")
    parser.add_argument("--explorer-rows", type=int, default=39_599, help="validation rows of the explorer benchmark")
    parser.add_argument("--properties-valid", type=int, default=39_599, help="validation rows of the property benchmark")
    parser.add_argument("--properties-train", type=int, default=158_396, help="train rows of the property benchmark")
    parser.add_argument("--posteriors-ensemble", type=int, default=5, help="flows per label of the posterior benchmark")
    parser.add_argument("--joint-epochs", type=int, default=2, help="epochs measured of the joint posterior's flow")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples per interval of the intervals benchmark")
    parser.add_argument("--budget-repeats", type=int, default=3, help="repeats of the label-budget benchmark")
    parser.add_argument("--representation-rows", type=int, default=39_219,
                        help="valid rows of the representation benchmark (the published file's)")
    parser.add_argument("--representation-dims", type=int, nargs="+", default=[128, 1024],
                        help="embedding dimensions of the representation benchmark")
    parser.add_argument("--side-valid", type=int, default=4_950, help="validation rows of the side-by-side (1/8 size)")
    parser.add_argument("--side-train", type=int, default=19_800, help="train rows of the side-by-side (1/8 size)")
    parser.add_argument(
        "--only", nargs="*",
        default=["embedding", "reproduction", "released", "valid", "chain", "knn", "explorer", "downstream", "properties",
                 "second-k", "posteriors", "joint", "intervals", "budgets", "representation", "simulate",
                 "dry-run"],
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="astroclip-bench-") as tmp:
        path = Path(tmp) / "survey.h5"
        if {"embedding", "reproduction", "released", "valid", "chain"} & set(args.only):
            t0 = time.perf_counter()
            build_survey(path, args.rows, args.image_size)
            print(
                f"built {path.stat().st_size / 1e9:.2f} GB ({args.rows:,} rows, {args.image_size}px) "
                f"in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        if "embedding" in args.only:
            rows += bench_embedding(args, path, "reference")
        if "reproduction" in args.only:
            rows += bench_embedding(args, path, "reproduction", args.reproduction_rows)
        if "released" in args.only:
            rows += bench_embedding(args, path, "released", args.released_rows)
        if "valid" in args.only:
            rows += bench_valid(args, path)
        if "chain" in args.only:
            rows += bench_chain(args, path)
        if "knn" in args.only:
            rows += bench_knn(args)
        if "explorer" in args.only:
            rows += bench_explorer(args, Path(tmp))
        if "downstream" in args.only:
            rows += bench_downstream(args)
        if "properties" in args.only:
            rows += bench_properties(args)
        if "second-k" in args.only:
            rows += bench_second_k(args)
        if "posteriors" in args.only:
            rows += bench_posteriors(args)
        if "joint" in args.only:
            rows += bench_joint(args)
        if "intervals" in args.only:
            rows += bench_intervals(args)
        if "budgets" in args.only:
            rows += bench_budgets(args)
        if "representation" in args.only:
            rows += bench_representation(args)
        if "simulate" in args.only:
            rows += bench_simulate(args)
        if "dry-run" in args.only:
            (Path(tmp) / "dry").mkdir()
            rows += bench_dry_run(args, Path(tmp) / "dry")

    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else platform.processor() or "CPU"
    print(f"\n{datetime.date.today()} | {platform.node()} | {device} | {os.cpu_count()} cores | torch {torch.__version__} | "
          f"chain: {args.architecture} model, precision {args.precision}, batch {args.batch_size}, "
          f"{int(args.rows * 0.2):,} validation rows of {args.image_size}px\n")
    print("| measure | ours | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
