"""The models: one registry of the built-in ones and the plug-in contract, the one way from a checkpoint to an embedder.

Built-in models, one module each (`reference.py`, `reproduction.py`, `released.py`), which the registry names and
imports only when a checkpoint is tried against it; each defines `recognise(checkpoint) -> bool`, from what a loaded
checkpoint holds, and `build(checkpoint, path)`, the model in eval mode on the CPU. Adding a built-in model is one
module and one line in `REGISTRY`. Promotion records which one a checkpoint holds (`recognise`); the embed step
builds it (`load`). The image crop is each model's own `image_crop` (cut by `astroclip_eval.io.crop`, the same for
the reader and the model).

The plug-in contract. A model entry may name `loader: "package.module:function"` (importable in the workflow's
environment; the config's schema checks the form) and free-form `loader_options`. The function is called as

    embedder = function(checkpoint: str, device: torch.device, options: dict)

and returns an object with

    embed_images(images)   images:  float32 tensor (n, H, W, 3) on `device`, raw g/r/z pixels as stored in the file
    embed_spectra(spectra) spectra: float32 tensor (n, 7781) on `device`, raw flux on the DESI grid
                           each returning an (n, D) tensor, the same D for both; rows need not be normalised

doing its own preprocessing (cropping, scaling) and putting itself on `device`. Optional attributes: `image_crop`
(int: the centre crop it uses, so the reader reads only that band of each image; without it whole images are
passed) and `embedding_dim` (int: checked against the model entry before anything is embedded). Both methods are
called under `torch.no_grad()` (and bfloat16 autocast with `embedding.precision: bf16`). `loader: auto` (the
default) serves the built-in models through this same contract; they take no options.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from astroclip_eval.io.errors import UserError, key_mismatch
from astroclip_eval.io.files import Refused, safe_load
from astroclip_eval.io.plan import AUTO_LOADER


class Embedder(Protocol):
    def embed_images(self, images: torch.Tensor) -> torch.Tensor: ...

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class BuiltinModel:
    """One built-in model: its names, and its module, imported only when a checkpoint is tried against it (the
    reference model's imports Lightning, about 10 s, which the steps that only name models never pay)."""

    name: str  # as the promotion record's `architecture` and the overview name it
    title: str  # as messages name it
    label: str  # as the overview's table of models names it
    module: str  # defines recognise(checkpoint) -> bool, build(checkpoint, path), and optionally expected_keys()

    def _module(self) -> Any:
        return importlib.import_module(self.module)

    def recognise(self, ckpt: Any) -> bool:
        return self._module().recognise(ckpt)

    def build(self, ckpt: Any, path: str | os.PathLike) -> torch.nn.Module:
        """The model in eval mode on the CPU."""
        return self._module().build(ckpt, path)

    def keys(self) -> set[str] | None:
        """Its state_dict keys, for the message when no model recognises a checkpoint."""
        expected = getattr(self._module(), "expected_keys", None)
        return expected() if expected else None


# Tried in order; the first that recognises a checkpoint builds it.
REGISTRY = (
    BuiltinModel("released", "the original AstroCLIP's released model", "original AstroCLIP, released (ViT + SpecFormer)",
                 "astroclip_eval.models.released"),
    BuiltinModel("reproduction", "the reproduction's AstroCLIP", "reproduction (ResNet-50 + spender)",
                 "astroclip_eval.models.reproduction"),
    BuiltinModel("reference", "the reference model", "this project's reference model", "astroclip_eval.models.reference"),
)


def read_checkpoint(path: str | os.PathLike) -> Any:
    """`safe_load`, or for the original AstroCLIP's released checkpoint (refused by it) the structural reader's tree;
    any other refused file stays refused. Memory-mapped: the optimizer moments a training checkpoint carries (twice
    its weights) are never read, nor the weights of a file refused only after them."""
    from astroclip_eval.io import structural

    try:
        return safe_load(path, mmap=True)
    except Refused:
        tree = structural.read(path)
        if REGISTRY[0].recognise(tree):  # the released model: the only one whose checkpoint pickles modules
            return tree
        raise


def recognise(ckpt: Any) -> BuiltinModel | None:
    """The built-in model a loaded checkpoint holds, or None."""
    return next((model for model in REGISTRY if model.recognise(ckpt)), None)


def load(spec: str, checkpoint: str, device: torch.device, options: dict[str, Any], where: str = "loader") -> Embedder:
    """The embedder for a checkpoint: the built-in model it holds (`auto`), or a plug-in's ("package.module:function"),
    checked to embed both modalities."""
    if spec == AUTO_LOADER:
        if options:
            raise UserError(f"{where.rsplit('.', 1)[0]}.loader_options: the built-in models take none, got {sorted(options)}")
        return _builtin(checkpoint, where).to(device)
    module_name, _, function_name = spec.partition(":")
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


def _builtin(checkpoint: str, where: str) -> torch.nn.Module:
    """The built-in model the checkpoint holds; otherwise one line on its keys against the closest."""
    ckpt = read_checkpoint(checkpoint)
    state_dict = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        raise UserError(f"{checkpoint}: not a Lightning checkpoint (expected a dict with 'state_dict')")
    model = recognise(ckpt)
    if model is not None:
        return model.build(ckpt, checkpoint)
    keys = set(state_dict)
    known = {m.title: expected for m in REGISTRY if (expected := m.keys()) is not None}
    closest = max(known, key=lambda title: len(keys & known[title]))
    message = key_mismatch(checkpoint, keys, known[closest], f"either built-in model (closest: {closest})")
    raise UserError(f"{message}; for another model name a loader plug-in in {where}")
