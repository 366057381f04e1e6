"""Which checkpoint a model is evaluated with: the best checkpoint of a training run, promoted into the cache.

Checkpoints are read by `astroclip_eval.models.read_checkpoint` (weights only, an explicit allow-list; the released
AstroCLIP's by the structural reader) and the model each holds is named by the models' registry. The best checkpoint
is chosen by the score the ModelCheckpoint callback stored *inside* each file (`current_score`), never by its file
name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from astroclip_eval.io.atomic import atomic_path, json_text
from astroclip_eval.io.errors import UserError, short
from astroclip_eval.models import read_checkpoint, recognise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointScore:
    path: Path
    epoch: int | None
    monitor: str | None
    score: float | None
    architecture: str | None = None
    lightning_version: str | None = None


def _score(path: str | os.PathLike, monitor: str, value: Any) -> float | None:
    """The stored score as a float: a number or a one-element tensor, anything else refused in one line."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype.is_floating_point:
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
    raise UserError(f"{path}: the stored {monitor} score is {shown}, expected a number")


def _epoch(path: str | os.PathLike, value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31):
        return value
    raise UserError(f"{path}: the stored epoch is {type(value).__name__} {short(value)}, expected a small integer")


def stored_score(path: str | os.PathLike) -> CheckpointScore:
    """The monitored metric and its value as the ModelCheckpoint callback saved them inside the file."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not a Lightning checkpoint (expected a dict with 'state_dict')")
    monitor, score = None, None
    for key, state in (ckpt.get("callbacks") or {}).items():
        if isinstance(key, str) and key.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor"):
            monitor = state["monitor"] if isinstance(state["monitor"], str) else short(state["monitor"])
            if "'mode': 'max'" in key:
                raise UserError(f"{path}: ModelCheckpoint monitored {monitor[:80]} with mode 'max'; expected a loss (mode 'min')")
            score = _score(path, monitor, state.get("current_score"))
            break
    version = ckpt.get("pytorch-lightning_version")
    version = version if isinstance(version, str) and len(version) < 40 else None
    model = recognise(ckpt)
    return CheckpointScore(Path(path), _epoch(path, ckpt.get("epoch")), monitor, score, model and model.name, version)


def select_best(run_dir: str | os.PathLike) -> CheckpointScore:
    """The `-min` checkpoint of a run directory with the lowest stored monitored score."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: checkpoint_dir not found (expected a Lightning run directory)")
    all_ckpts = sorted(run_dir.glob("*.ckpt"))
    candidates = [p for p in all_ckpts if "-min" in p.stem]
    if not candidates:
        if any("-last" in p.stem for p in all_ckpts):
            raise UserError(
                f"{run_dir}: only '-last' checkpoints, no '-min' checkpoint to promote; to promote a '-last' file "
                "on purpose, set `checkpoint: <that file>` instead of `checkpoint_dir` for this model"
            )
        raise UserError(f"{run_dir}: no '*-min*.ckpt' checkpoint in the run directory")
    scored = [stored_score(p) for p in candidates]
    unscored = [s.path.name for s in scored if s.score is None]
    if unscored:
        raise UserError(f"{run_dir}: no monitored score stored in {', '.join(unscored)} (ModelCheckpoint state missing)")
    finite = [s for s in scored if math.isfinite(s.score)]
    if not finite:
        raise UserError(f"{run_dir}: every '-min' checkpoint stores a score that is not finite "
                        f"({', '.join(f'{s.path.name}: {s.score}' for s in scored)}); a diverged run has no best checkpoint")
    for s in scored:
        if not math.isfinite(s.score):
            log.warning("%s: stored %s %s is not finite; not a candidate for promotion", s.path, s.monitor, s.score)
    return min(finite, key=lambda s: (s.score, s.path.name))


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def promote(source: str | os.PathLike, dest_ckpt: str | os.PathLike, dest_json: str | os.PathLike) -> CheckpointScore:
    """Copy the best checkpoint of a run directory (or a given checkpoint file) into the cache, atomically."""
    source = Path(source)
    chosen = select_best(source) if source.is_dir() else stored_score(source)
    if chosen.score is not None and not math.isfinite(chosen.score):
        raise UserError(f"{source}: the stored {chosen.monitor} is {chosen.score}, not a finite loss (a diverged run)")
    record = {
        "source": str(chosen.path),
        "epoch": chosen.epoch,
        "monitor": chosen.monitor,
        "score": chosen.score,
        "architecture": chosen.architecture,
        "lightning_version": chosen.lightning_version,
    }
    # Both written under temporary names, then renamed back to back on leaving the block (the checkpoint first):
    # a step killed while copying or hashing leaves neither.
    with atomic_path(dest_json) as json_tmp, atomic_path(dest_ckpt) as ckpt_tmp:
        shutil.copyfile(chosen.path, ckpt_tmp)
        json_tmp.write_text(json_text({**record, "sha256": sha256(ckpt_tmp)}))
    return chosen
