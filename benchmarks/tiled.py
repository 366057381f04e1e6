"""A survey file of the published file's shape, built by repeating a small simulation, for the full-size checks.

Simulating 200,000 galaxies at 152x152 would take most of an hour; memory and streaming do not depend on which
galaxies fill the rows. The file has the published layout and shape: groups "0".."9" whose validation tails (the
last 20% of each group) add up to `n_valid` rows, one HDF5 chunk per image and per spectrum. Validation rows repeat
the valid galaxies of a simulated survey in a seeded order; exactly `n_zero` of them get an all-zero spectrum and
`n_high_z` a redshift above the filter's range, so the valid-row filter drops a known number. Train rows are never
written (chunked datasets store nothing for them; they read back as zeros), so only validation-split steps apply.
Scores computed on it say nothing about a model: each galaxy appears many times.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from astroclip_eval.io.atomic import atomic_path
from astroclip_eval.io.data import SPECTRUM_LENGTH, split_sizes
from astroclip_eval.io.errors import UserError

BLOCK_ROWS = 256


def group_sizes(n_valid: int, n_groups: int = 10) -> list[int]:
    """Near-equal group sizes whose validation tails (`split_sizes`) add up to n_valid."""
    tails = [n_valid // n_groups + (g < n_valid % n_groups) for g in range(n_groups)]
    return [5 * t for t in tails]  # int(0.8 * 5t) == 4t, so the tail of 5t rows is t


def plant_invalid(n_valid: int, n_zero: int, n_high_z: int, keep: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation rows to give an all-zero spectrum and a redshift out of range: disjoint, seeded, never in keep."""
    candidates = np.setdiff1d(np.arange(n_valid), np.asarray(keep, dtype=np.int64))
    if n_zero + n_high_z > candidates.size:
        raise UserError(f"tiled survey: {n_zero + n_high_z} invalid rows requested from {candidates.size} free rows")
    chosen = np.random.default_rng([seed, 7]).choice(candidates, n_zero + n_high_z, replace=False)
    return np.sort(chosen[:n_zero]), np.sort(chosen[n_zero:])


def write_tiled(
    path: str | os.PathLike, source: dict[str, np.ndarray], n_valid: int, n_zero: int, n_high_z: int,
    keep: tuple[int, ...] = (), n_groups: int = 10, seed: int = 0, z_max: float = 0.8,
) -> None:
    """Write the file (atomically), streaming one block of validation rows at a time from the source columns."""
    good = np.flatnonzero((source["spectra"].max(axis=1) > 0) & (source["redshifts"] >= 0) & (source["redshifts"] <= z_max))
    if good.size == 0:
        raise UserError("tiled survey: the source simulation has no valid galaxy to repeat")
    order = np.random.default_rng([seed, 3]).permutation(good)
    zero, high_z = plant_invalid(n_valid, n_zero, n_high_z, list(keep), seed)
    size = source["images"].shape[1]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["simulator"] = "benchmarks/tiled.py"
        first = 0  # validation row index of the current group's first tail row
        for g, n in enumerate(group_sizes(n_valid, n_groups)):
            grp = f.create_group(str(g))
            images = grp.create_dataset("images", (n, size, size, 3), "f4", chunks=(1, size, size, 3))
            spectra = grp.create_dataset("spectra", (n, SPECTRUM_LENGTH), "f4", chunks=(1, SPECTRUM_LENGTH))
            start = split_sizes(n)[0]
            redshifts = np.zeros(n, dtype=np.float32)
            for lo in range(start, n, BLOCK_ROWS):
                hi = min(lo + BLOCK_ROWS, n)
                rows = np.arange(first + lo - start, first + hi - start)
                src = order[rows % order.size]
                block = source["spectra"][src]
                block[np.isin(rows, zero)] = 0.0
                images[lo:hi] = source["images"][src]
                spectra[lo:hi] = block
                redshifts[lo:hi] = np.where(np.isin(rows, high_z), z_max + 0.05 + 0.001 * (rows % 100), source["redshifts"][src])
            grp["redshifts"] = redshifts
            grp["targetids"] = 39627000000000000 + np.arange(n, dtype=np.int64) + g * 10**7
            first += n - start
