"""Embed every row of a split with a trained model, streaming contiguous row blocks from the file.

Row i of each output is row i of the split, invalid rows included, so indices stay aligned with the data.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from .checkpoints import safe_load

from .data import Survey
from .errors import UserError
from .model import ReferenceAstroCLIP

log = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    """'auto' picks a GPU when present (with a warning when not); 'cuda' without a GPU is an error."""
    log.info("CUDA_VISIBLE_DEVICES=%s", os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.warning("embedding.device is 'auto' and no GPU is visible: embedding on the CPU")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"embedding.device: '{requested}' requested but no CUDA GPU is visible (use 'auto' or 'cpu')")
    return torch.device(requested)


@torch.no_grad()
def embed_split(
    model: ReferenceAstroCLIP,
    survey: Survey,
    split: str,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, spectrum) embeddings, float32 (n, D) on the CPU, in split order."""
    n = survey.n_rows(split)
    crop = int(model.hparams.image_crop)
    images_out = torch.empty((n, model.embedding_dim), dtype=torch.float32)
    spectra_out = torch.empty((n, model.embedding_dim), dtype=torch.float32)
    pin = device.type == "cuda"
    bar = tqdm(total=n, unit="galaxy", desc=f"embedding {split}", file=sys.stderr, disable=not progress, mininterval=5)
    for lo, block in survey.iter_chunks(split, ("images", "spectra"), batch_size, crop=crop):
        hi = lo + block["images"].shape[0]
        images, spectra = torch.from_numpy(block["images"]), torch.from_numpy(block["spectra"])
        if pin:
            images, spectra = images.pin_memory(), spectra.pin_memory()
        images_out[lo:hi] = model.embed_images(images.to(device, non_blocking=True)).float().cpu()
        spectra_out[lo:hi] = model.embed_spectra(spectra.to(device, non_blocking=True)).float().cpu()
        bar.update(hi - lo)
    bar.close()
    return images_out, spectra_out


def load_embeddings(image_path: str, spectrum_path: str) -> dict[str, np.ndarray]:
    """{'image': (N, D), 'spectrum': (N, D)} float32 arrays from the embedding step's outputs."""
    out = {}
    for name, path in (("image", image_path), ("spectrum", spectrum_path)):
        tensor = safe_load(path)
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2:
            raise UserError(f"{path}: expected a 2-D embedding tensor (N, D)")
        out[name] = tensor.float().numpy()
    if out["image"].shape != out["spectrum"].shape:
        raise UserError(f"{image_path}, {spectrum_path}: shapes differ, {out['image'].shape} vs {out['spectrum'].shape}")
    return out


def load_indices(path: str) -> np.ndarray:
    tensor = safe_load(path)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 1:
        raise UserError(f"{path}: expected a 1-D tensor of row indices")
    return tensor.numpy().astype(np.int64)
