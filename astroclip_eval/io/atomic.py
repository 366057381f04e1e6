"""Write outputs under a temporary name in the destination directory and rename on success.

A job killed mid-write (preemption, out of disk, SIGKILL) then leaves no file that a later step would trust.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astroclip_eval.io.errors import UserError


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs should be readable like any other file
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # one line for the user, not a writer's traceback
            raise UserError(f"no space left on device while writing {dest}") from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def json_text(obj: Any) -> str:
    """Strict JSON (a NaN or infinity is an error, not `NaN`), indented, keys sorted."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(dest: str | os.PathLike, obj: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json_text(obj))


def save_torch(dest: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(dest) as tmp, open(tmp, "wb") as file:  # through Python's writes: a full disk is ENOSPC
        torch.save(obj, file)  # (torch's own file writer says only "iostream error")


def save_figure(dest: str | os.PathLike, fig: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the destination's suffix)."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format=dest.suffix.lstrip("."), **kwargs)


def write_csv(dest: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as CSV atomically, without the index."""
    with atomic_path(dest) as tmp:
        frame.to_csv(tmp, index=False)


def write_parquet(dest: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as Parquet atomically, without the index (long tables: per-galaxy predictions)."""
    with atomic_path(dest) as tmp:
        frame.to_parquet(tmp, index=False)
