"""A plug-in model for the tests, deliberately not the reference model: fixed projections of simple features.

Images: per-band mean and spread of the central crop, and two colours. Spectra: block means of the flux. Each is
multiplied by a projection matrix stored in the checkpoint (a plain dict of tensors). It honours the loader contract
in astroclip_eval/loaders.py and nothing more.
"""

from __future__ import annotations

import torch

from astroclip_eval.io.files import safe_load


class ToyEmbedder:
    def __init__(self, image_projection: torch.Tensor, spectrum_projection: torch.Tensor, crop: int, device: torch.device):
        self.image_projection = image_projection.to(device)
        self.spectrum_projection = spectrum_projection.to(device)
        self.image_crop = crop  # optional attribute: the reader then reads only this band

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[1:3]
        c = self.image_crop
        x = images[:, (h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c, :].flatten(1, 2)
        flux = x.clamp_min(0).mean(dim=1) + 1e-3
        features = torch.cat([torch.log(flux), x.std(dim=1), torch.log(flux[:, 1:] / flux[:, :-1])], dim=1)
        return features @ self.image_projection

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        blocks = self.spectrum_projection.shape[0]
        x = torch.nan_to_num(spectra)[:, : (spectra.shape[1] // blocks) * blocks]
        return x.reshape(x.shape[0], blocks, -1).mean(dim=2) @ self.spectrum_projection


def write_checkpoint(path: str, dim: int, blocks: int = 16, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    torch.save({"image_projection": torch.randn(8, dim, generator=g),
                "spectrum_projection": torch.randn(blocks, dim, generator=g)}, path)


def load(checkpoint: str, device: torch.device, options: dict) -> ToyEmbedder:
    weights = safe_load(checkpoint)
    return ToyEmbedder(weights["image_projection"], weights["spectrum_projection"], int(options.get("crop", 16)), device)


def not_an_embedder(checkpoint: str, device: torch.device, options: dict) -> dict:
    """A loader that breaks the contract (for the tests of its error message)."""
    return {"checkpoint": checkpoint}


class FailingEmbedder(ToyEmbedder):
    """Fails inside embed_images as a GPU out of memory would (for the test that its traceback reaches the log)."""

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated by the toy plug-in)")


def load_failing(checkpoint: str, device: torch.device, options: dict) -> FailingEmbedder:
    weights = safe_load(checkpoint)
    return FailingEmbedder(weights["image_projection"], weights["spectrum_projection"], int(options.get("crop", 16)), device)
