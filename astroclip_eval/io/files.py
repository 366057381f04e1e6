"""Reading the project's torch files safely: checkpoints (weights only, an explicit allow-list, so a crafted file
cannot run code), and the embeddings and valid-row indices the workflow writes, which the notebooks read."""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from astroclip_eval.io.data import Survey, targetids_sha256
from astroclip_eval.io.errors import UserError

if TYPE_CHECKING:
    import torch


class Refused(UserError):
    """A checkpoint that needs types outside the allow-list."""


def _disallowed(message: str) -> str:
    """What the unpickler refused, from its message (which otherwise advises loading the file unsafely)."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    if found:
        return f"the Python object {found.group(1)}"
    found = re.search(r"WeightsUnpickler error: ([^\n]{1,120})", message)
    return re.sub(r"\x1b\[[0-9;]*m", "", found.group(1)).rstrip(".") if found else "something other than data"


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False) -> Any:
    """torch.load with weights_only=True; any failure becomes one UserError naming the file. With `mmap` tensors are
    views of the mapped file, read only where used. torch is imported here, not with the module: the steps that
    read only tables (a results file, a join) start 3 s sooner without it."""
    import torch

    from astroclip_eval.io.structural import checked_pickle

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    if zipfile.is_zipfile(path):  # torch's archive: its pickle is walked before torch builds it (structural's bounds)
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) == 1:
                checked_pickle(archive, pickles[0], path)
    try:  # no type beyond torch's own allow-list: Lightning 2 saves a model's settings as a plain dict
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise Refused(
            f"{path}: refused to load: it holds {_disallowed(str(exc))}, which a checkpoint read without running code "
            "cannot hold (tensors, numbers, strings and containers can); the built-in "
            "models' checkpoints load with `loader: auto`, any other format through a loader plug-in"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, RecursionError) as exc:
        raise UserError(f"{path}: unreadable checkpoint (truncated or corrupt?): {str(exc).splitlines()[0][:200]}") from None


def load_embeddings(image_path: str, spectrum_path: str) -> dict[str, np.ndarray]:
    """{'image': (N, D), 'spectrum': (N, D)} float32 arrays from the embedding step's outputs."""
    import torch

    out = {}
    for name, path in (("image", image_path), ("spectrum", spectrum_path)):
        tensor = safe_load(path)
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2:
            raise UserError(f"{path}: expected a 2-D embedding tensor (N, D)")
        out[name] = tensor.float().numpy()
    if out["image"].shape != out["spectrum"].shape:
        raise UserError(f"{image_path}, {spectrum_path}: shapes differ, {out['image'].shape} vs {out['spectrum'].shape}")
    return out


def load_indices(path: str, rows: int | None = None) -> np.ndarray:
    """A split's valid rows as the valid-indices step writes them: a 1-D tensor of increasing, distinct row numbers
    from 0 (and below `rows`, the split's rows, when given). A boolean mask, a repeated or negative index or one past
    the rows would be scored as something else without a word, so each is refused naming the file."""
    import torch

    tensor = safe_load(path)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 1:
        raise UserError(f"{path}: expected a 1-D tensor of row indices")
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise UserError(f"{path}: expected integer row indices, found {str(tensor.dtype).removeprefix('torch.')} "
                        "values (a mask?)")
    indices = tensor.numpy().astype(np.int64)
    if indices.size and indices[0] < 0:
        raise UserError(f"{path}: a negative row index ({indices[0]}); expected row numbers from 0")
    steps = np.diff(indices)
    if (steps <= 0).any():
        at = int(np.flatnonzero(steps <= 0)[0])
        raise UserError(f"{path}: row indices must increase, each once; {indices[at + 1]} follows {indices[at]}")
    if rows is not None and indices.size and indices[-1] >= rows:
        raise UserError(f"{path}: row index {indices[-1]} is past the split's {rows:,} rows (indices of another file?)")
    return indices


def embedding_record(image_path: str | os.PathLike) -> Path:
    """The embedding step's record (`{split}embeddings.json`: checkpoint, devices, the split's fingerprint) that
    the merge writes beside a split's `{split}image_embeddings.pt`."""
    path = Path(image_path)
    if not path.name.endswith("image_embeddings.pt"):
        raise UserError(f"{path}: not named like the embedding step's output ({{split}}image_embeddings.pt), so its "
                        "record (embeddings.json) cannot be found")
    return path.with_name(path.name.removesuffix("image_embeddings.pt") + "embeddings.json")


def _embedded_data(image_path: str) -> dict[str, Any]:
    """The split's fingerprint as embedded, from the record beside the embeddings."""
    record = embedding_record(image_path)
    try:
        data = json.loads(record.read_text()).get("data")
    except FileNotFoundError:
        raise UserError(f"{record}: not found beside {image_path} (rerun the embed step)") from None
    except (ValueError, AttributeError):
        raise UserError(f"{record}: not the embedding step's JSON record (rerun the embed step)") from None
    if not isinstance(data, dict) or not {"rows", "groups", "targetids_sha256"} <= data.keys():
        raise UserError(f"{record}: records no fingerprint of the data it embedded (written before embeddings "
                        "recorded it); rerun the embed step")
    return data


def load_split(image_path: str, spectrum_path: str, indices_path: str, dataset: str | None = None,
               split: str = "valid", labels: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One split's embeddings and its valid rows, the rows checked to lie within the embeddings'. With `dataset`,
    the embeddings are checked to be of that split of the data file, row for row (its rows, groups and targetids as
    the embed step recorded them: a data file replaced under the cache, say restored with an older modification
    time, is never scored against embeddings of another); with `labels`, that the label table's targetids are the
    embedded galaxies' in the same order."""
    embeddings = load_embeddings(image_path, spectrum_path)
    n = len(embeddings["image"])
    if dataset:
        with Survey(dataset) as survey:
            data = survey.fingerprint(split)
        if data["rows"] != n:
            raise UserError(f"{image_path}: {n:,} embedded rows, but the {split} split of {dataset} has "
                            f"{data['rows']:,}: embeddings of another data file (rerun the embed step)")
    embedded = _embedded_data(image_path) if dataset or labels else {}  # the record, read once
    if dataset:
        if embedded != data:
            what = "groups" if embedded["groups"] != data["groups"] else "targetids"
            raise UserError(f"{image_path}: embedded from other galaxies than the {split} split of {dataset} holds "
                            f"(its {what} differ): embeddings of another data file (rerun the embed step)")
    if labels:
        require_labels_of(labels, embedded["targetids_sha256"], f"the galaxies embedded in {image_path}")
    return embeddings, load_indices(indices_path, rows=n)


def require_labels_of(labels: str, targetids_hash: str, galaxies: str) -> None:
    """Refuse a label table (the catalogue join's labels.csv) whose targetids are not, in order, those hashed to
    `targetids_hash` (`galaxies` says whose, for the message): labels joined to another data file would otherwise
    be scored against these galaxies row by row."""
    try:
        targetids = pd.read_csv(labels, usecols=["targetid"])["targetid"].to_numpy()
    except ValueError:
        raise UserError(f"{labels}: no targetid column (not the catalogue join's labels.csv)") from None
    if targetids.dtype.kind not in "iu" or targetids_sha256(targetids) != targetids_hash:
        raise UserError(f"{labels}: its targetids are not those of {galaxies}, in their order: labels joined to "
                        "another data file (rerun the join_catalogues step)")


def read_labels(path: str, classes: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """A labels.csv as the join wrote it (or a table of scores naming labels): an empty cell is missing and any other
    text is kept as written (NA, None and null are class names), and the questions' columns (`classes`) are text
    whatever they hold (integer codes are classes), so the scores and the explorer read the same labels."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in classes})


SPLIT_PREFIXES = {"valid": "", "train": "train_"}  # how the cache names each split's files


def cached_splits(cache: str | os.PathLike, model: str) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
    """Both splits' embeddings and valid rows of one model as the workflow's cache holds them (for reruns of a
    step in a benchmark or a test)."""
    cache = Path(cache)
    return {
        split: load_split(str(cache / f"{model}/{prefix}image_embeddings.pt"),
                          str(cache / f"{model}/{prefix}spectrum_embeddings.pt"), str(cache / f"{prefix}valid_indices.pt"))
        for split, prefix in SPLIT_PREFIXES.items()
    }


def split_labels(dataset: str | os.PathLike, label_files: dict[str, str], properties: list[str],
                 redshift: bool) -> dict[str, dict[str, np.ndarray]]:
    """Both splits' numeric labels by name, float64 with NaN where missing: the redshift from the data file (when
    asked) and each property from that split's joined labels.csv (`label_files`: split -> path)."""
    values: dict[str, dict[str, np.ndarray]] = {split: {} for split in label_files}
    if redshift:
        with Survey(dataset) as survey:
            for split in values:
                values[split]["redshift"] = survey.read(split, "redshifts").astype(np.float64)
    for split, path in label_files.items():
        if properties:
            frame = read_labels(path)
            values[split].update({name: frame[name].to_numpy(np.float64) for name in properties})
    return values
