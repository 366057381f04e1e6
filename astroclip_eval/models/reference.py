"""The reference AstroCLIP model: a compact image CNN and a spectrum 1D-CNN on a log-wavelength grid, trained with
a CLIP (InfoNCE) loss into one L2-normalised space.

The model does its own preprocessing from raw survey rows (images (n, H, W, 3) in nanomaggies, spectra
(n, 7781) in 1e-17 erg/s/cm^2/A), so the embedding step needs nothing but the checkpoint.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from astroclip_eval.io.crop import centre_crop
from astroclip_eval.io.data import ARCSINH_SOFTENING, SPECTRUM_LENGTH, wavelength_grid
from astroclip_eval.io.errors import UserError

VIEW_MASK_FRACTION = 0.3  # of the spectrum bins hidden in the second view (training only)


def _infonce(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i and column i of the logits are the positive pair."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.body(x))


class ImageEncoder(nn.Module):
    """ResNet-style CNN: a stride-2 stem, then stages that halve the resolution, widen, and add a residual block.

    No residual block at full stem resolution: on CPUs that layer would dominate the step time.
    """

    def __init__(self, widths: tuple[int, ...], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.GELU(),
        ]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.Conv2d(w_in, w_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.GELU(),
                ResBlock(w_out),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(widths[-1], widths[-1]), nn.GELU(), nn.Linear(widths[-1], out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def log_wavelength_resampler(pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left neighbours and weights that interpolate the spectrum, average-pooled by `pool`, onto as many bins evenly
    spaced in log wavelength over the same range: there a redshift is a shift by log(1 + z), the same everywhere."""
    n = SPECTRUM_LENGTH // pool
    centres = wavelength_grid()[: n * pool].reshape(n, pool).mean(axis=1)
    target = np.geomspace(centres[0], centres[-1], n)
    left = np.clip(np.searchsorted(centres, target, side="right") - 1, 0, n - 2)
    weight = (target - centres[left]) / (centres[left + 1] - centres[left])
    return torch.from_numpy(left.astype(np.int64)), torch.from_numpy(weight.astype(np.float32))


class SpectrumEncoder(nn.Module):
    """1D convolutions over the log-wavelength spectrum with a wavelength coordinate as a second channel, flattened
    (not pooled) into an MLP that also sees the log amplitude.

    Where a feature sits is the redshift, so positions are kept: with pooling over positions (attention pooling) the
    demo model's spectrum kNN R^2 was 0.61; with the coordinate channel, flattening and the log grid it is 0.70.
    """

    def __init__(self, widths: tuple[int, ...], out_dim: int, n_bins: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, n = 2, n_bins
        for i, w in enumerate(widths):
            kernel, pad = (7, 3) if i == 0 else (5, 2)
            layers += [nn.Conv1d(c_in, w, kernel_size=kernel, stride=2, padding=pad), nn.BatchNorm1d(w), nn.GELU()]
            c_in, n = w, (n + 2 * pad - kernel) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c_in * n + 1, c_in), nn.GELU(), nn.Linear(c_in, out_dim))

    def forward(self, x: torch.Tensor, log_amplitude: torch.Tensor) -> torch.Tensor:
        position = torch.linspace(-1.0, 1.0, x.shape[1], device=x.device, dtype=x.dtype).expand_as(x)
        h = self.features(torch.stack([x, position], dim=1))
        return self.head(torch.cat([h.flatten(1), log_amplitude.unsqueeze(1)], dim=1))


class ReferenceAstroCLIP(nn.Module):
    """Image and spectrum encoders into a shared `embedding_dim` space, trained with a CLIP loss (`clip_loss`).

    A plain torch module: the steps that embed with it need no Lightning (4.5 s of imports per job); the demo's
    training wraps it in `astroclip_eval.demo.train.ReferenceTraining`, which writes `settings` into the
    checkpoint as its `hyper_parameters`."""

    def __init__(
        self,
        embedding_dim: int = 128,
        image_crop: int = 32,
        spectrum_pool: int = 16,
        image_widths: tuple[int, ...] = (16, 32, 64),
        spectrum_widths: tuple[int, ...] = (16, 32, 64, 64),
        lr: float | None = None,  # the training settings: set by a training run from the config, unused otherwise
        weight_decay: float | None = None,
        max_epochs: int | None = None,
        spectrum_view_weight: float = 0.0,
    ):
        super().__init__()
        self.settings = {
            "embedding_dim": embedding_dim, "image_crop": image_crop, "spectrum_pool": spectrum_pool,
            "image_widths": image_widths, "spectrum_widths": spectrum_widths, "lr": lr,
            "weight_decay": weight_decay, "max_epochs": max_epochs, "spectrum_view_weight": spectrum_view_weight,
        }  # a checkpoint's hyper_parameters: what `build` constructs the model from
        self.image_encoder = ImageEncoder(tuple(image_widths), embedding_dim)
        self.spectrum_encoder = SpectrumEncoder(tuple(spectrum_widths), embedding_dim, SPECTRUM_LENGTH // spectrum_pool)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        left, weight = log_wavelength_resampler(spectrum_pool)  # derived from the settings: not saved in checkpoints
        self.register_buffer("resample_left", left, persistent=False)
        self.register_buffer("resample_weight", weight, persistent=False)
        # Normalisation statistics, filled from training data by `fit_normalisation` and saved with the weights.
        self.register_buffer("image_mean", torch.zeros(3))
        self.register_buffer("image_std", torch.ones(3))
        self.register_buffer("log_amp_mean", torch.zeros(()))
        self.register_buffer("log_amp_std", torch.ones(()))

    @property
    def embedding_dim(self) -> int:
        return int(self.settings["embedding_dim"])

    @property
    def image_crop(self) -> int:
        return int(self.settings["image_crop"])

    # -- preprocessing ----------------------------------------------------------------------------------
    def crop_images(self, images: torch.Tensor) -> torch.Tensor:
        """Centre crop of (n, H, W, 3) images to image_crop pixels (a no-op on already cropped images)."""
        return centre_crop(images, self.image_crop, "the reference model's")

    def _image_features(self, images: torch.Tensor) -> torch.Tensor:
        soft = torch.tensor(ARCSINH_SOFTENING, device=images.device, dtype=images.dtype)
        x = torch.asinh(self.crop_images(images) / soft).permute(0, 3, 1, 2)
        return x

    def _spectrum_features(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if spectra.shape[1] != SPECTRUM_LENGTH:
            raise ValueError(f"spectra have {spectra.shape[1]} bins, expected {SPECTRUM_LENGTH}")
        p = self.settings["spectrum_pool"]
        x = torch.nan_to_num(spectra, nan=0.0, posinf=0.0, neginf=0.0)
        x = x[:, : (x.shape[1] // p) * p].reshape(x.shape[0], -1, p).mean(dim=2)
        w = self.resample_weight
        x = x[:, self.resample_left] * (1 - w) + x[:, self.resample_left + 1] * w
        amplitude = x.abs().mean(dim=1).clamp_min(1e-3)
        return x / amplitude.unsqueeze(1), torch.log(amplitude)

    @torch.no_grad()
    def fit_normalisation(self, images: torch.Tensor, spectra: torch.Tensor) -> None:
        """Per-channel image statistics and log-amplitude statistics from a sample of training rows."""
        x = self._image_features(images)
        self.image_mean.copy_(x.mean(dim=(0, 2, 3)))
        self.image_std.copy_(x.std(dim=(0, 2, 3)).clamp_min(1e-6))
        _, log_amp = self._spectrum_features(spectra)
        self.log_amp_mean.copy_(log_amp.mean())
        self.log_amp_std.copy_(log_amp.std().clamp_min(1e-6))

    def _standard_images(self, images: torch.Tensor) -> torch.Tensor:
        x = self._image_features(images)
        return (x - self.image_mean[None, :, None, None]) / self.image_std[None, :, None, None]

    def _standard_spectra(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, log_amp = self._spectrum_features(spectra)
        return x, (log_amp - self.log_amp_mean) / self.log_amp_std

    # -- embedding --------------------------------------------------------------------------------------
    def encode_images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_encoder(x), dim=1)

    def encode_spectra(self, x: torch.Tensor, log_amp: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.spectrum_encoder(x, log_amp), dim=1)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """(n, H, W, 3) raw images -> (n, D) unit vectors."""
        return self.encode_images(self._standard_images(images))

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        """(n, 7781) raw spectra -> (n, D) unit vectors."""
        return self.encode_spectra(*self._standard_spectra(spectra))

    # -- training ---------------------------------------------------------------------------------------
    def _augment(self, x_img: torch.Tensor, x_spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotations and flips of images; noise on both, so the model cannot memorise training pairs."""
        k = int(torch.randint(0, 4, ()).item())
        x_img = torch.rot90(x_img, k, dims=(2, 3))
        if torch.rand(()) < 0.5:
            x_img = x_img.flip(3)
        # torch.randn, not randn_like: on this permuted (channels-last) view randn_like is 8x slower on CPU, a third
        # of the whole training step.
        x_img = x_img + 0.1 * torch.randn(x_img.shape, device=x_img.device, dtype=x_img.dtype)
        x_spec = x_spec + 0.3 * torch.randn_like(x_spec) * x_spec.std(dim=1, keepdim=True)
        return x_img, x_spec

    def clip_loss(self, batch: dict[str, torch.Tensor], augment: bool) -> torch.Tensor | None:
        """Symmetric CLIP (InfoNCE) loss over the batch's pairs (the training data hold valid rows only), plus, in
        training, `spectrum_view_weight` times the same loss between each spectrum and a second view of it."""
        if batch["redshifts"].shape[0] < 2:
            return None
        x_img = self._standard_images(batch["images"])
        x_spec, log_amp = self._standard_spectra(batch["spectra"])
        clean = x_spec
        if augment:
            x_img, x_spec = self._augment(x_img, x_spec)
        z_img, z_spec = self.encode_images(x_img), self.encode_spectra(x_spec, log_amp)
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        loss = _infonce(scale * z_img @ z_spec.T)
        weight = float(self.settings["spectrum_view_weight"])
        if augment and weight > 0:
            z_view = self.encode_spectra(self._spectrum_view(clean), log_amp)
            loss = loss + weight * _infonce(scale * z_spec @ z_view.T)
        return loss

    @staticmethod
    def _spectrum_view(x: torch.Tensor) -> torch.Tensor:
        """A second view of standardised spectra: fresh noise and one window of VIEW_MASK_FRACTION of the bins zeroed.

        Telling a spectrum from the batch's others by its remaining features needs where its lines and breaks sit,
        which is the redshift the image cannot give; AstroCLIP gets this from pretraining its spectrum encoder by
        masked modelling, which the demo's 3-minute budget leaves no room for.
        """
        n, length = x.shape
        width = int(VIEW_MASK_FRACTION * length)
        start = torch.randint(0, length - width + 1, (n, 1), device=x.device)
        position = torch.arange(length, device=x.device)[None]
        keep = (position < start) | (position >= start + width)
        return (x + 0.3 * torch.randn_like(x) * x.std(dim=1, keepdim=True)) * keep


def expected_keys() -> set[str]:
    """The reference model's state_dict keys (for the message when no built-in model recognises a checkpoint)."""
    return set(ReferenceAstroCLIP().state_dict())


def recognise(ckpt: object) -> bool:
    """True for a Lightning checkpoint of ReferenceAstroCLIP (its hyper-parameters and its encoders' keys)."""
    return (
        isinstance(ckpt, dict)
        and "hyper_parameters" in ckpt
        and any(str(k).startswith("image_encoder.") for k in ckpt.get("state_dict") or {})
    )


def build(ckpt: object, path: str | os.PathLike) -> ReferenceAstroCLIP:
    """The reference model from a loaded checkpoint, in eval mode on the CPU (its registry entry's build)."""
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise UserError(f"{path}: not a Lightning checkpoint of ReferenceAstroCLIP (no state_dict/hyper_parameters)")
    try:
        model = ReferenceAstroCLIP(**dict(ckpt["hyper_parameters"]))
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise UserError(
            f"{path}: checkpoint does not match ReferenceAstroCLIP (from another model class?): "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    return model.eval()
