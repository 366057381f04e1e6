"""Catalogues joined to the survey's rows: by a key column (PROVABGS by TARGETID) or on the sky (Galaxy Zoo DECaLS
by RA/Dec, nearest match within a radius, with coordinates from a catalogue joined by key).

A join is done once per split; the result is one row of catalogue values per survey row (NaN or empty where the
galaxy is not in the catalogue) and its counts. Catalogues are untrusted: a duplicated key, no overlap, a missing
column or an unreadable file ends in one line naming the catalogue and the column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astroclip_eval.io.errors import UserError, short

FORMATS = {
    ".csv": "csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".hdf5": "hdf5",
    ".h5": "hdf5",
    ".parquet": "parquet",
}
# A catalogue may hold at most this many bytes of values per byte of file (a compressed column of constants is the
# worst honest case), or this much in all: a 70 KiB HDF5 file can declare 67 million rows, a 1 MB .fits.gz can
# inflate to 1 GiB, and either would be allocated before anything else could object.
MAX_INFLATION = 100
INFLATION_FLOOR = 64 * 2**20


def file_format(path: str | Path) -> str:
    name = str(path).lower()
    for suffix, kind in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return kind
    raise UserError(f"{path}: unknown catalogue format (expected one of {', '.join(sorted(FORMATS))})")


def read_columns(name: str, path: str | Path, columns: list[str]) -> pd.DataFrame:
    """The named columns of a catalogue file, nothing else (one-dimensional columns only)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"catalogues.{name}: {path} not found")
    kind = file_format(path)
    try:
        if kind == "csv":
            header = pd.read_csv(path, nrows=0).columns
            _require(name, path, header, columns)
            raw = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=[""])
            return pd.DataFrame({c: _typed(raw[c]) for c in columns})
        if kind == "parquet":
            import pyarrow.parquet as pq

            _require(name, path, pq.read_schema(path).names, columns)
            return pd.read_parquet(path, columns=columns)
        if kind == "hdf5":
            _check_declared_sizes(name, path)
        table = _hdf5_columns(path) if kind == "hdf5" else None
        if table is None and str(path).lower().endswith(".gz"):
            return _read_gzipped_fits(name, path, columns)
        if table is None:
            from astropy.table import Table

            table = Table.read(path, format=kind)
        names = table.colnames if hasattr(table, "colnames") else list(table)
        _require(name, path, names, columns)
        return pd.DataFrame({col: _column(name, path, table, col) for col in columns})
    except UserError:
        raise
    except Exception as exc:  # a truncated or foreign file: what the reader said, in one line
        said = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"catalogues.{name}: cannot read {path} as {kind}: {short(said)}") from None


def _typed(values: pd.Series) -> pd.Series:
    """A CSV column read as text, as numbers when every non-empty value is one (int64 when all are integers and
    none is missing), else as the text it holds: class names such as NA or None stay classes, and a numeric column
    with a stray `n/a?` is text, which the label that reads it refuses naming the value."""
    try:
        return pd.to_numeric(values)
    except (ValueError, TypeError):
        return values.astype(object)


def _check_declared_sizes(name: str, path: Path) -> None:
    """Every dataset of an HDF5 catalogue: its declared size within MAX_INFLATION of the file's, before any read."""
    import h5py

    limit = max(MAX_INFLATION * path.stat().st_size, INFLATION_FLOOR)
    with h5py.File(path, "r") as f:
        sizes: list[tuple[str, int]] = []
        f.visititems(lambda key, obj: sizes.append((key, obj.size * obj.dtype.itemsize))
                     if isinstance(obj, h5py.Dataset) else None)
    for key, size in sizes:
        if size > limit:
            raise UserError(f"catalogues.{name}: dataset {short(key)} of {path} declares {size:,} bytes of values in a "
                            f"file of {path.stat().st_size:,} bytes (more than {MAX_INFLATION}x); not read")


def _read_gzipped_fits(name: str, path: Path, columns: list[str]) -> pd.DataFrame:
    """A .fits.gz inflated to a temporary file under the bound (astropy would inflate it whole in memory), then read
    as FITS from there, memory-mapped, the named columns only."""
    import gzip
    import tempfile

    from astropy.table import Table

    limit = max(MAX_INFLATION * path.stat().st_size, INFLATION_FLOOR)
    with tempfile.NamedTemporaryFile(suffix=".fits") as out, gzip.open(path, "rb") as source:
        written = 0
        while chunk := source.read(2**20):
            written += len(chunk)
            if written > limit:
                raise UserError(f"catalogues.{name}: {path} inflates to more than {limit:,} bytes ({MAX_INFLATION}x "
                                "its size); not read (gunzip it yourself if it is genuine)")
            out.write(chunk)
        out.flush()
        table = Table.read(out.name, format="fits", memmap=True)
        _require(name, path, table.colnames, columns)
        frame = pd.DataFrame({c: _column(name, path, table, c) for c in columns})
        del table
    return frame


def _column(name: str, path: Path, table: Any, col: str) -> np.ndarray:
    """One column as a one-dimensional array in native byte order (copied out of any memory map)."""
    values = np.array(table[col])
    if values.ndim != 1:
        raise UserError(f"catalogues.{name}: column {short(col)} of {path} has shape {values.shape}, expected one value per row")
    return values.astype(values.dtype.newbyteorder("=")) if values.dtype.kind in "iuf" else values


def _hdf5_columns(path: Path) -> dict[str, Any] | None:
    """An HDF5 catalogue whose columns are top-level datasets (as DESI's value-added catalogues ship), read lazily;
    None when the file holds an astropy table instead."""
    import h5py

    with h5py.File(path, "r") as f:
        if "__astropy_table__" in f or any(isinstance(v, h5py.Group) for v in f.values()) or not len(f):
            return None
        if any(f[k].dtype.fields for k in f):  # a compound table
            return None
    return _LazyColumns(path)


class _LazyColumns(dict):
    """Column name -> values of a top-level-datasets HDF5 file, read on first use (only what is asked for)."""

    def __init__(self, path: Path):
        import h5py

        with h5py.File(path, "r") as f:
            super().__init__({k: None for k in f})
        self.path = path

    def __getitem__(self, key: str) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[key][()]


def _require(name: str, path: Path, present: Any, columns: list[str]) -> None:
    missing = [c for c in columns if c not in set(present)]
    if missing:
        shown = ", ".join(short(str(c)) for c in list(present)[:12])
        raise UserError(f"catalogues.{name}: column {short(missing[0])} not in {path} (it has {shown}...)")


def join_by_key(name: str, key: str, survey_ids: np.ndarray, catalogue_ids: np.ndarray) -> tuple[np.ndarray, dict]:
    """Catalogue row per survey row (-1 where absent) and the counts. A key that repeats is refused: which of two
    entries is the galaxy's would be a guess."""
    ids = pd.Series(catalogue_ids)
    if ids.isna().any():
        raise UserError(f"catalogues.{name}: column {short(key)} has empty values")
    if ids.dtype.kind not in "iu":
        raise UserError(
            f"catalogues.{name}: column {short(key)} holds {ids.dtype} values; a key is compared exactly, so an integer "
            "column is expected (DESI TARGETIDs exceed 2**53, where floats skip integers)"
        )
    repeated = ids[ids.duplicated()]
    if repeated.size:
        raise UserError(
            f"catalogues.{name}: column {key} repeats {repeated.size} values (first {repeated.iloc[0]}); keys must be unique"
        )
    position = pd.Index(ids).get_indexer(pd.Index(survey_ids))
    matched = int((position >= 0).sum())
    if matched == 0:
        raise UserError(f"catalogues.{name}: no value of column {key} is a targetid of the data file (no overlap)")
    return position.astype(np.int64), {
        "method": f"key {key}",
        "rows": int(len(survey_ids)),
        "matched": matched,
        "unmatched": int(len(survey_ids) - matched),
        "duplicates": 0,
    }


def match_on_sky(
    name: str, ra: np.ndarray, dec: np.ndarray, cat_ra: np.ndarray, cat_dec: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, dict]:
    """Nearest catalogue row within the radius per survey row (-1 where none, or where the row has no coordinates).
    Two survey rows on one catalogue entry: the closer keeps it and the other counts as a duplicate."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    position = np.full(len(ra), -1, dtype=np.int64)
    known = np.isfinite(ra) & np.isfinite(dec)
    good = np.isfinite(cat_ra) & np.isfinite(cat_dec)
    duplicates = 0
    if known.any() and good.any():
        cat_rows = np.flatnonzero(good)
        catalogue = SkyCoord(cat_ra[good] * u.deg, cat_dec[good] * u.deg)
        idx, sep, _ = match_coordinates_sky(SkyCoord(ra[known] * u.deg, dec[known] * u.deg), catalogue)
        sep = sep.to_value(u.arcsec)
        within = sep <= radius_arcsec
        rows, hits, seps = np.flatnonzero(known)[within], cat_rows[idx[within]], sep[within]
        order = np.lexsort((seps, hits))  # per catalogue entry, the closest survey row first
        first = np.ones(order.size, dtype=bool)
        first[1:] = hits[order][1:] != hits[order][:-1]
        duplicates = int((~first).sum())
        position[rows[order][first]] = hits[order][first]
    matched = int((position >= 0).sum())
    if matched == 0:
        raise UserError(f"catalogues.{name}: no survey row has a match within {radius_arcsec} arcsec (no overlap)")
    return position, {
        "method": f"sky within {radius_arcsec} arcsec",
        "rows": int(len(ra)),
        "matched": matched,
        "unmatched": int(len(ra) - matched),
        "duplicates": duplicates,
        "without_coordinates": int((~known).sum()),
    }


def coordinate(name: str, column: str, values: np.ndarray, declination: bool) -> np.ndarray:
    """Degrees as float64 (NaN stays: that row has no position); text, or a declination outside [-90, 90] (radians
    are not detected: they fall inside), is refused in one line naming the catalogue and column."""
    if np.asarray(values).dtype.kind not in "iuf":
        raise UserError(f"catalogues.{name}: column {short(column)} holds text, expected coordinates in degrees")
    values = np.asarray(values, dtype=np.float64)
    if declination:
        with np.errstate(invalid="ignore"):
            outside = np.flatnonzero(np.abs(values) > 90)
        if outside.size:
            raise UserError(f"catalogues.{name}: column {short(column)} holds {outside.size} declinations outside "
                            f"[-90, 90] degrees (first {values[outside[0]]:g} at row {outside[0]})")
    return values


def take(values: pd.Series, position: np.ndarray) -> np.ndarray:
    """values[position] per survey row, NaN (numbers) or None (text) where position is -1."""
    arr = values.to_numpy()
    if arr.dtype.kind in "iufb":
        out = np.full(position.size, np.nan)
        out[position >= 0] = arr[position[position >= 0]].astype(np.float64)
        return out
    out = np.full(position.size, None, dtype=object)
    out[position >= 0] = arr[position[position >= 0]]
    return out


def join(
    catalogues: Mapping[str, dict], needed: Mapping[str, list[str]], targetids: np.ndarray
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict], dict[str, np.ndarray]]:
    """Every needed column of every catalogue aligned to the survey rows whose `targetids` are given, the counts of
    each join, and per catalogue which survey rows it matched. Key joins first: sky matches take their coordinates
    from one of them."""
    columns: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, dict] = {}
    matched: dict[str, np.ndarray] = {}
    order = sorted(needed, key=lambda n: "match" in catalogues[n])
    for name in order:
        entry = catalogues[name]
        if "key" in entry:
            table = read_columns(name, entry["path"], _unique([entry["key"], *needed[name]]))
            position, counts[name] = join_by_key(name, entry["key"], targetids, table[entry["key"]].to_numpy())
        else:
            match = entry["match"]
            source = match["coordinates"]
            ra, dec = (coordinate(source, c, columns[source][c], i == 1) for i, c in enumerate(match["coordinates_columns"]))
            table = read_columns(name, entry["path"], _unique([match["ra"], match["dec"], *needed[name]]))
            cat_ra, cat_dec = (coordinate(name, match[c], table[match[c]].to_numpy(), c == "dec") for c in ("ra", "dec"))
            position, counts[name] = match_on_sky(name, ra, dec, cat_ra, cat_dec, match["radius_arcsec"])
        columns[name] = {c: take(table[c], position) for c in needed[name]}
        matched[name] = position >= 0
    return columns, counts, matched


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def join_section(counts: dict[str, Any]) -> tuple[str, str, str, list[str], list[list[str]]]:
    """The overview's section on the validation split's joins (join.json): per catalogue how it was joined and how
    many rows matched, then per label the valid rows that have a value. (title, anchor, note, header, rows)"""
    rows = [[name, c["method"], f"{c['rows']:,}", f"{c['matched']:,}", f"{c['unmatched']:,}", f"{c['duplicates']:,}"]
            for name, c in counts["joins"].items()]
    rows += [[f"label {name}", "valid rows with a value", "", f"{count:,}", "", ""]
             for name, count in counts["labelled"].items()]
    return ("Catalogue joins (validation split)", "joins", "",
            ["catalogue", "joined by", "rows", "matched", "unmatched", "duplicates"], rows)
