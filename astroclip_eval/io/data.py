"""Read the AstroCLIP survey file: the published multi-group layout or a flat single-group file.

The published layout has top-level groups "0".."9", each with `images` (n, H, W, 3), `spectra` (n, 7781),
`redshifts` (n,) and `targetids` (n,). In each group the first int(0.8 * n) rows are the training split and the
rest the validation split; a split is those pieces concatenated in group order, and row i of the validation split
is "galaxy i" everywhere downstream. A flat file holds `image`, `spectrum`, `redshift`, `targetid` at the top
level; all of its rows form the validation split (users' own held-out data) and it has no training split.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from astroclip_eval.io.crop import crop_origin
from astroclip_eval.io.errors import UserError

SPECTRUM_LENGTH = 7781
WAVE_MIN, WAVE_MAX = 3600.0, 9824.0
TRAIN_FRACTION = 0.8
COLUMNS = ("images", "spectra", "redshifts", "targetids")
FLOAT_COLUMNS = ("images", "spectra", "redshifts")  # floating point; integer images (uint8 cut-outs) are not fluxes
# What the models take is read as float32, what they compute in: float16 exactly, float64 rounded to the nearest float32.
MODEL_INPUTS = ("images", "spectra")
FLAT_NAMES = {"images": "image", "spectra": "spectrum", "redshifts": "redshift", "targetids": "targetid"}
SPLITS = ("train", "valid")
# arcsinh softening per band (g, r, z) in nanomaggies, near the Legacy Survey sky noise: the reference model's input
# stretch.
ARCSINH_SOFTENING = (0.01, 0.02, 0.05)


def wavelength_grid() -> np.ndarray:
    """The DESI grid: 7781 bins linearly spaced from 3600 to 9824 Angstrom."""
    return np.linspace(WAVE_MIN, WAVE_MAX, SPECTRUM_LENGTH)


def split_sizes(n: int) -> tuple[int, int]:
    """(train, valid) row counts of one group of n rows under the published split rule."""
    n_train = int(TRAIN_FRACTION * n)
    return n_train, n - n_train


@dataclass(frozen=True)
class Segment:
    """Rows [start, stop) of one HDF5 group that belong to a split, placed at `offset` in that split."""

    group: str
    start: int
    stop: int
    offset: int

    @property
    def size(self) -> int:
        return self.stop - self.start


class Survey:
    """An open survey file with its split bookkeeping; reads only the columns and rows asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: dataset file not found")
        if not h5py.is_hdf5(self.path):
            raise UserError(f"{self.path}: not an HDF5 file (expected the AstroCLIP survey layout)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open HDF5 file (truncated or corrupt?): {exc}") from None
        try:
            self._inspect()
        except BaseException:
            self._file.close()
            raise

    # -- layout -------------------------------------------------------------------------------------------
    def _inspect(self) -> None:
        f = self._file
        group_keys = sorted((k for k in f if isinstance(f[k], h5py.Group)), key=_group_order)
        if group_keys:
            self.layout = "published"
            self._names = {c: c for c in COLUMNS}
            self._groups = group_keys
        elif all(name in f for name in FLAT_NAMES.values()):
            self.layout = "flat"
            self._names = dict(FLAT_NAMES)
            self._groups = [""]
        else:
            missing = [n for n in FLAT_NAMES.values() if n not in f]
            raise UserError(
                f"{self.path}: neither the published layout (groups '0'..'9') nor a flat file "
                f"(missing dataset(s) {', '.join(missing)})"
            )
        self._segments: dict[str, list[Segment]] = {s: [] for s in SPLITS}
        offsets = dict.fromkeys(SPLITS, 0)
        self.image_shape: tuple[int, int] | None = None
        for key in self._groups:
            n = self._check_group(key)
            if self.layout == "flat":
                bounds = {"train": (0, 0), "valid": (0, n)}
            else:
                n_train, _ = split_sizes(n)
                bounds = {"train": (0, n_train), "valid": (n_train, n)}
            for split, (start, stop) in bounds.items():
                if stop > start:
                    self._segments[split].append(Segment(key, start, stop, offsets[split]))
                    offsets[split] += stop - start
        self._n_rows = offsets

    def _dataset(self, group: str, column: str) -> h5py.Dataset:
        name = self._names[column]
        where = f"{group}/{name}" if group else name
        if where not in self._file:
            raise UserError(f"{self.path}: missing dataset '{where}'")
        return self._file[where]

    def _check_group(self, key: str) -> int:
        where = f"group '{key}'" if key else "file"
        ds = {c: self._dataset(key, c) for c in COLUMNS}
        counts = {c: d.shape[0] if d.ndim else 0 for c, d in ds.items()}
        if len(set(counts.values())) != 1:
            detail = ", ".join(f"{self._names[c]}={n}" for c, n in counts.items())
            raise UserError(f"{self.path}: row counts disagree in {where}: {detail}")
        for column, d in ds.items():
            kind = "f" if column in FLOAT_COLUMNS else "iu"
            if d.dtype.kind not in kind or (column in FLOAT_COLUMNS and d.dtype.itemsize not in (2, 4, 8)):
                expected = "floating point (float16, float32 or float64)" if kind == "f" else "integers"
                raise UserError(f"{self.path}: {where} '{self._names[column]}' holds {d.dtype}, expected {expected}")
        if ds["redshifts"].ndim != 1 or ds["targetids"].ndim != 1:
            raise UserError(f"{self.path}: {where} redshifts {ds['redshifts'].shape} and targetids "
                            f"{ds['targetids'].shape}, expected one value per row (n,)")
        spectra, images = ds["spectra"], ds["images"]
        if spectra.ndim != 2 or spectra.shape[1] != SPECTRUM_LENGTH:
            raise UserError(
                f"{self.path}: {where} '{self._names['spectra']}' has shape {spectra.shape}, "
                f"expected (n, {SPECTRUM_LENGTH}) on the DESI grid"
            )
        if images.ndim != 4 or images.shape[3] != 3:
            raise UserError(
                f"{self.path}: {where} '{self._names['images']}' has shape {images.shape}, "
                "expected (n, H, W, 3) with g, r, z bands last"
            )
        shape = tuple(images.shape[1:3])
        if self.image_shape is None:
            self.image_shape = shape
        elif shape != self.image_shape:
            raise UserError(f"{self.path}: {where} images are {shape}, other groups {self.image_shape}")
        return counts["images"]

    @property
    def selection(self) -> dict[str, float | int] | None:
        """How a simulated file selected its galaxies (the simulator's `selection_*` attributes), else None."""
        found = {k.removeprefix("selection_"): v.item() for k, v in self._file.attrs.items() if k.startswith("selection_")}
        return found or None

    # -- reading --------------------------------------------------------------------------------------
    def n_rows(self, split: str) -> int:
        return self._n_rows[_check_split(split)]

    def segments(self, split: str) -> list[Segment]:
        return list(self._segments[_check_split(split)])

    def fingerprint(self, split: str) -> dict[str, Any]:
        """What a split's rows are, cheap enough for the published 12 GB file (its targetids, 0.3 MB per 40,000
        rows, and its groups): embeddings and labels record it, and a step that reads them beside this file checks
        that they are of the same galaxies in the same order."""
        return {"rows": self.n_rows(split), "groups": [[s.group, s.start, s.stop] for s in self.segments(split)],
                "targetids_sha256": targetids_sha256(self.read(split, "targetids"))}

    def read(
        self, split: str, column: str, start: int = 0, stop: int | None = None, crop: int | None = None
    ) -> np.ndarray:
        """Rows [start, stop) of one column of a split, concatenated across groups.

        `crop` reads only the central crop x crop pixels of images (an HDF5 hyperslab), not whole images.
        """
        n = self.n_rows(split)
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise IndexError(f"rows [{start}, {stop}) outside the {split} split of {n} rows")
        parts = []
        for seg in self._segments[split]:
            lo, hi = max(start, seg.offset), min(stop, seg.offset + seg.size)
            if lo >= hi:
                continue
            rows = slice(seg.start + lo - seg.offset, seg.start + hi - seg.offset)
            parts.append(self._read_slice(seg.group, column, rows, crop))
        if not parts:
            return self._read_slice(self._groups[0], column, slice(0, 0), crop)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _read_slice(self, group: str, column: str, rows: slice, crop: int | None) -> np.ndarray:
        ds = self._dataset(group, column)
        if column == "images" and crop is not None:
            try:
                y0, x0 = crop_origin(ds.shape[1], ds.shape[2], crop)
            except UserError as error:
                raise UserError(f"{self.path}: {error}") from None
            block = ds[rows, y0 : y0 + crop, x0 : x0 + crop, :]
        else:
            block = ds[rows]
        return block.astype(np.float32, copy=False) if column in MODEL_INPUTS else block

    def iter_chunks(
        self,
        split: str,
        columns: Sequence[str],
        chunk_rows: int,
        start: int = 0,
        stop: int | None = None,
        crop: int | None = None,
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield (first row, {column: block}) over rows [start, stop) of a split in contiguous blocks."""
        stop = self.n_rows(split) if stop is None else stop
        for lo in range(start, stop, chunk_rows):
            hi = min(lo + chunk_rows, stop)
            yield lo, {c: self.read(split, c, lo, hi, crop=crop) for c in columns}

    def read_rows(self, split: str, column: str, indices: Sequence[int], crop: int | None = None) -> np.ndarray:
        """The given rows of one column (any order, repeats allowed), reading only those rows."""
        idx = np.asarray(indices, dtype=np.int64)
        n = self.n_rows(split)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise UserError(f"{self.path}: row index outside the {split} split of {n} rows")
        uniq, inverse = np.unique(idx, return_inverse=True)
        blocks = [self.read(split, column, int(i), int(i) + 1, crop=crop) for i in uniq]
        if not blocks:
            return self.read(split, column, 0, 0, crop=crop)
        return np.concatenate(blocks)[inverse]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Survey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def targetids_sha256(targetids: np.ndarray) -> str:
    """The sha256 of a split's targetids in row order, as 64-bit little-endian integers (the data file's and a
    labels table's column hash alike whatever integer type they were stored in)."""
    return hashlib.sha256(np.ascontiguousarray(targetids, dtype="<i8").tobytes()).hexdigest()


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _group_order(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)

