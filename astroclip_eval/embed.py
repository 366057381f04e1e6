"""Embed every row of a split with a trained model, streaming contiguous row blocks from the file, in shards.

Row i of each output is row i of the split, invalid rows included, so indices stay aligned with the data.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from astroclip_eval.io.data import Survey
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import safe_load
from astroclip_eval.models import Embedder
from astroclip_eval.tasks.valid import spectrum_masks

log = logging.getLogger(__name__)
T = TypeVar("T")


def describe(device: torch.device) -> str:
    """The device for the provenance: 'cpu', or 'cuda:0 (<card name>)'."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


PRECISIONS = {"32": None, "bf16": torch.bfloat16}
PROGRESS_SECONDS = 30  # how often the embed step logs its progress


def shard_rows(n_rows: int, batch_size: int, shard: int, shards: int) -> tuple[int, int]:
    """Rows [lo, hi) of shard `shard` of `shards`: contiguous and cut on batch boundaries.

    Every batch is then the same rows whatever the number of shards, so on the CPU the embeddings are bitwise
    independent of the sharding.
    """
    if not 0 <= shard < shards:
        raise UserError(f"embedding shard {shard} is outside 0..{shards - 1}")
    n_batches = math.ceil(n_rows / batch_size)
    lo, hi = shard * n_batches // shards, (shard + 1) * n_batches // shards
    return min(lo * batch_size, n_rows), min(hi * batch_size, n_rows)


def prefetch(blocks: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Produce the next blocks in a thread while the caller computes: HDF5 reads overlap the forward passes."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put `item` unless the consumer has stopped (so a full queue never blocks this thread forever)."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not offer(block):
                    return
            offer(done)
        except BaseException as exc:  # re-raised in the consumer, so a read error is not lost
            offer(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def prepare(model: Embedder, device: torch.device) -> Embedder:
    """A torch module on its device, in eval mode, channels_last on a GPU (where convolutions run faster in it).

    Other embedders place themselves (the loader contract) and are returned as they are.
    """
    if not isinstance(model, torch.nn.Module):
        return model
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def require_finite_rows(image_emb: torch.Tensor, spectrum_emb: torch.Tensor, spectra: np.ndarray, split: str, lo: int
                        ) -> None:
    """Stop at the first block where a row that can be valid (its spectrum finite and not all zero) has a
    non-finite embedding: a NaN would otherwise sort as a perfect match and score. Rows whose spectrum already
    makes them invalid may embed to anything."""
    zero, nonfinite = spectrum_masks(spectra)
    usable = torch.from_numpy(~(zero | nonfinite))
    for modality, emb in (("image", image_emb), ("spectrum", spectrum_emb)):
        bad = np.flatnonzero((usable & ~torch.isfinite(emb).all(dim=1)).numpy())
        if bad.size:
            raise UserError(
                f"{modality} embeddings of the {split} split: {bad.size} rows with a usable spectrum are not finite in "
                f"rows {lo}-{lo + len(spectra) - 1} (first rows {(bad + lo)[:5].tolist()}); the likely cause is "
                f"{modality} data that are not finite, or a dtype the model cannot take"
            )


@torch.no_grad()
def embed_split(
    model: Embedder,
    survey: Survey,
    split: str,
    batch_size: int,
    device: torch.device,
    precision: str = "32",
    start: int = 0,
    stop: int | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, spectrum) embeddings of rows [start, stop) of a split, float32 (n, D) on the CPU, in row order, each row
    L2-normalised.

    One pass over the file: contiguous blocks, images read as their centre crop only (cropped before the copy
    to the device), on a GPU pinned, copied without blocking, and the next block read while this one computes.
    """
    if precision not in PRECISIONS:
        raise UserError(f"embedding.precision: '{precision}' is not one of {sorted(PRECISIONS)}")
    stop = survey.n_rows(split) if stop is None else stop
    n = stop - start
    crop = getattr(model, "image_crop", None)  # without one, whole images go to the embedder
    dim = getattr(model, "embedding_dim", 0)
    images_out = spectra_out = torch.empty((0, dim), dtype=torch.float32)
    pin = device.type == "cuda"
    dtype = PRECISIONS[precision]

    def blocks() -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for lo, block in survey.iter_chunks(split, ("images", "spectra"), batch_size, start, stop, crop=crop):
            images, spectra = torch.from_numpy(block["images"]), torch.from_numpy(block["spectra"])
            yield lo, (images.pin_memory() if pin else images), (spectra.pin_memory() if pin else spectra)

    started = last_report = time.perf_counter()
    done = 0
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        # A GPU computes asynchronously, so a reader thread overlaps the next read with it. On the CPU the reader
        # would compete with torch for the same cores (and h5py holds the GIL while it reads): measured slower.
        for lo, images, spectra in prefetch(blocks()) if device.type == "cuda" else blocks():
            block_spectra = spectra.numpy()
            rows = slice(lo - start, lo - start + images.shape[0])
            # rows L2-normalised here, whatever the embedder returns (the released AstroCLIP does not normalise)
            image_emb = F.normalize(model.embed_images(images.to(device, non_blocking=True)).float(), dim=1).cpu()
            spectrum_emb = F.normalize(model.embed_spectra(spectra.to(device, non_blocking=True)).float(), dim=1).cpu()
            if lo == start:  # the first block fixes the dimension (an embedder need not declare it)
                if image_emb.shape != spectrum_emb.shape or image_emb.shape[0] != images.shape[0]:
                    raise UserError(
                        f"the embedder returned image embeddings {tuple(image_emb.shape)} and spectrum embeddings "
                        f"{tuple(spectrum_emb.shape)} for {images.shape[0]} rows; expected the same (n, D) for both"
                    )
                images_out = torch.empty((n, image_emb.shape[1]), dtype=torch.float32)
                spectra_out = torch.empty((n, spectrum_emb.shape[1]), dtype=torch.float32)
            require_finite_rows(image_emb, spectrum_emb, block_spectra, split, lo)
            images_out[rows], spectra_out[rows] = image_emb, spectrum_emb
            done += images.shape[0]
            now = time.perf_counter()
            if progress and (now - last_report >= PROGRESS_SECONDS or done == n):  # to the rule's log, not a bar
                log.info("embedded %d/%d %s rows (%.0f%%), %.1f rows/s on %s", done, n, split, 100 * done / max(n, 1),
                         done / max(now - started, 1e-9), device)
                last_report = now
    return images_out, spectra_out


def merge_shards(paths: Sequence[str], n_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Concatenate shard files in order, checking that their row ranges tile [0, n) without gaps or overlaps and that
    one checkpoint embedded them all from one data file; also return each shard's rows, the device it was embedded on,
    the sha256 of the checkpoint it loaded and the split's fingerprint (`Survey.fingerprint`) as it read it."""
    images, spectra, provenance, expected = [], [], [], 0
    for path in paths:
        shard = safe_load(path)
        if not isinstance(shard, dict) or not {"rows", "image", "spectrum"} <= shard.keys():
            raise UserError(f"{path}: not an embedding shard (expected rows, image, spectrum)")
        lo, hi = (int(v) for v in shard["rows"])
        if lo != expected or shard["image"].shape[0] != hi - lo or shard["spectrum"].shape[0] != hi - lo:
            raise UserError(f"{path}: holds rows [{lo}, {hi}), expected a shard starting at row {expected}")
        if hi > lo:  # an empty shard (more shards than batches) has no dimension to agree on
            images.append(shard["image"])
            spectra.append(shard["spectrum"])
        provenance.append({"shard": str(path), "rows": [lo, hi], "device": shard.get("device", "unknown"),
                           "checkpoint_sha256": shard.get("checkpoint_sha256"), "data": shard.get("data")})
        if provenance[-1]["checkpoint_sha256"] != provenance[0]["checkpoint_sha256"]:
            raise UserError(f"{path}: embedded by checkpoint {str(provenance[-1]['checkpoint_sha256'])[:12]}, "
                            f"{provenance[0]['shard']} by {str(provenance[0]['checkpoint_sha256'])[:12]}: shards of "
                            "two checkpoints (rerun the embed step)")
        if provenance[-1]["data"] != provenance[0]["data"]:
            raise UserError(f"{path}: embedded from other galaxies than {provenance[0]['shard']} (the split's "
                            "targetids differ): shards of two data files (rerun the embed step)")
        expected = hi
    if n_rows is not None and expected != n_rows:
        raise UserError(f"{paths[-1]}: the shards end at row {expected}, the split has {n_rows} rows")
    return torch.cat(images), torch.cat(spectra), provenance
