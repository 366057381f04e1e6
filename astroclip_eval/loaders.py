"""Model loaders: how the embedding step turns a promoted checkpoint into something that embeds raw survey rows.

The contract, in one place. A model entry may name `loader: "package.module:function"` (importable in the
workflow's environment) and free-form `loader_options`. The function is called as

    embedder = function(checkpoint: str, device: torch.device, options: dict)

and returns an object with

    embed_images(images)   images:  float32 tensor (n, H, W, 3) on `device`, raw g/r/z pixels as stored in the file
    embed_spectra(spectra) spectra: float32 tensor (n, 7781) on `device`, raw flux on the DESI grid
                           each returning an (n, D) tensor, the same D for both; rows need not be normalised

doing its own preprocessing (cropping, scaling) and putting itself on `device`. Optional attributes: `image_crop`
(int: the centre crop it uses, so the reader reads only that band of each image; without it whole images are
passed) and `embedding_dim` (int: checked against the model entry before anything is embedded). Both methods are
called under `torch.no_grad()` (and bfloat16 autocast with `embedding.precision: bf16`).

`loader: auto` (the default) serves the built-in models through this same contract, chosen by what the checkpoint
holds: the reproduction's AstroCLIP (`astroclip_eval.reproduction:load_reproduction`), the original AstroCLIP's
released model (`astroclip_eval.polymathic:load_released`) or this project's reference model
(`astroclip_eval.model:load_reference`); each can also be named explicitly.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import torch

from .checkpoints import architecture, load_checkpoint
from .errors import UserError
from .plan import AUTO_LOADER, LOADER_SPEC


class Embedder(Protocol):
    def embed_images(self, images: torch.Tensor) -> torch.Tensor: ...

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor: ...


def load(spec: str, checkpoint: str, device: torch.device, options: dict[str, Any], where: str = "loader") -> Embedder:
    """Import `spec` ("package.module:function"), call it, and check that what it returns embeds both modalities."""
    if spec == AUTO_LOADER:
        if options:
            raise UserError(f"{where.rsplit('.', 1)[0]}.loader_options: the built-in models take none, got {sorted(options)}")
        return load_builtin(checkpoint, device, where)
    if not LOADER_SPEC.match(spec):
        raise UserError(f"{where}: '{spec}' is not of the form 'package.module:function'")
    module_name, function_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            f"{where}: cannot import '{module_name}' ({exc}); is it installed in the workflow's environment?"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"{where}: '{module_name}' has no function '{function_name}'")
    try:
        embedder = function(checkpoint, device, dict(options))
    except UserError:
        raise
    except Exception as exc:  # a plug-in's own failure, still one line that says where
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(f"{where}: '{spec}' failed: {type(exc).__name__}: {first}") from None
    missing = [m for m in ("embed_images", "embed_spectra") if not callable(getattr(embedder, m, None))]
    if missing:
        raise UserError(f"{where}: '{spec}' returned {type(embedder).__name__}, which has no {' or '.join(missing)}")
    return embedder


def load_builtin(checkpoint: str, device: torch.device, where: str) -> Embedder:
    """The built-in model the checkpoint's state_dict belongs to; otherwise one line on its keys against the closest."""
    from . import model, polymathic, reproduction

    ckpt = load_checkpoint(checkpoint)
    state_dict = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        raise UserError(f"{checkpoint}: not a Lightning checkpoint (expected a dict with 'state_dict')")
    kind = architecture(ckpt)
    if kind == "released":
        return polymathic.from_checkpoint(ckpt, checkpoint).to(device)
    if kind == "reproduction":
        return reproduction.from_state_dict(state_dict, checkpoint).to(device)
    if kind == "reference":
        return model.reference_from_checkpoint(ckpt, checkpoint).to(device)
    known = {
        "the reproduction's AstroCLIP": reproduction.expected_keys(),
        "the reference model": set(model.ReferenceAstroCLIP().state_dict()),
    }
    keys = set(state_dict)
    closest = max(known, key=lambda name: len(keys & known[name]))
    message = reproduction.key_mismatch(checkpoint, keys, known[closest], f"either built-in model (closest: {closest})")
    raise UserError(f"{message}; for another model name a loader plug-in in {where}")
