"""The reproduction's AstroCLIP model (adnansiddiquei/AstroCLIP), rebuilt in plain torch from its state_dict.

Its checkpoints hold no hyper-parameters, only weights: a ResNet-50 image encoder with a two-layer head
(`encoders.0.*`) and a spender-style spectrum encoder with an MLP head (`encoders.1.encoder.*`). The embedding
dimension D and MLP width H are read from the tensor shapes. Preprocessing is the reproduction's validation
transform: a 96-pixel centre crop and per-row, per-channel standardisation with the unbiased standard deviation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from astroclip_eval.io.crop import centre_crop
from astroclip_eval.io.data import SPECTRUM_LENGTH
from astroclip_eval.io.errors import UserError, key_mismatch

IMAGE_CROP = 96
PREFIXES = ("encoders.0.", "encoders.1.encoder.")
# Shapes that set D and H; every other shape is fixed by the architecture.
DIM_KEY, WIDTH_KEY = "encoders.0.fc.2.weight", "encoders.1.encoder.mlp.0.weight"


class Bottleneck(nn.Module):
    """ResNet-50 v1.5 bottleneck (stride in the 3x3 conv), named as torchvision names it."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, 4 * width, 1, stride=stride, bias=False), nn.BatchNorm2d(4 * width))
            if stride != 1 or c_in != 4 * width
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ImageEncoder(nn.Module):
    """ResNet-50 (3, 4, 6, 3 bottlenecks) with its classifier replaced by Linear(2048, 2048) -> ReLU -> Linear(2048, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        for i, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(c_in, width, stride=2 if b == 0 and i > 1 else 1))
                c_in = 4 * width
            setattr(self, f"layer{i}", nn.Sequential(*layer))
        self.fc = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def _conv_block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    """Conv1d -> InstanceNorm1d (no affine, no running stats) -> PReLU per channel -> Dropout(0): spender's block."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.InstanceNorm1d(c_out), nn.PReLU(c_out), nn.Dropout(0.0)
    )


class SpenderEncoder(nn.Module):
    """Three conv blocks with max pooling, attention pooling (half the channels weight the other half), an MLP."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.conv1 = _conv_block(1, 128, 5)
        self.conv2 = _conv_block(128, 256, 11)
        self.conv3 = _conv_block(256, 512, 21)
        self.mlp = nn.Sequential(nn.Linear(256, width), nn.ReLU(), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(self.conv1(x.unsqueeze(1)), 5, stride=5, padding=2)
        x = F.max_pool1d(self.conv2(x), 11, stride=11, padding=5)
        values, keys = self.conv3(x).chunk(2, dim=1)
        return self.mlp((values * torch.softmax(keys, dim=-1)).sum(dim=-1))


class SpectrumWrapper(nn.Module):
    """Holds the spectrum encoder under `.encoder`, as the reproduction's module does."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.encoder = SpenderEncoder(dim, width)


def standardise(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """(x - mean) / unbiased std over `dims`, with 1e-10 where the std is exactly 0 (the reproduction's transform)."""
    x = x.float()
    std = x.std(dim=dims, keepdim=True)
    return (x - x.mean(dim=dims, keepdim=True)) / torch.where(std == 0, torch.full_like(std, 1e-10), std)


class ReproductionAstroCLIP(nn.Module):
    """The reproduction's image and spectrum encoders, embedding raw survey rows into L2-normalised vectors."""

    image_crop = IMAGE_CROP

    def __init__(self, embedding_dim: int = 128, mlp_width: int = 128):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.encoders = nn.ModuleList([ImageEncoder(embedding_dim), SpectrumWrapper(embedding_dim, mlp_width)])

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """(n, H, W, 3) raw g/r/z images (H, W >= 96) -> (n, D) unit vectors."""
        x = centre_crop(images, IMAGE_CROP, "the reproduction model's").permute(0, 3, 1, 2)
        return F.normalize(self.encoders[0](standardise(x, (2, 3))), dim=1)

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        """(n, 7781) raw spectra -> (n, D) unit vectors."""
        if spectra.shape[1] != SPECTRUM_LENGTH:
            raise UserError(f"spectra have {spectra.shape[1]} bins, the reproduction model expects {SPECTRUM_LENGTH}")
        return F.normalize(self.encoders[1].encoder(standardise(spectra, (1,))), dim=1)


def recognise(ckpt: object) -> bool:
    """True when the checkpoint's state_dict is laid out like the reproduction's (its keys, whatever their shapes)."""
    state_dict = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    return isinstance(state_dict, Mapping) and DIM_KEY in state_dict and WIDTH_KEY in state_dict


def expected_keys() -> set[str]:
    """The reproduction's state_dict keys (they do not depend on D or H)."""
    return set(ReproductionAstroCLIP(8, 8).state_dict())


def build(ckpt: dict, path: str | os.PathLike) -> ReproductionAstroCLIP:
    """The model with D and H read from the shapes, loaded strictly; any mismatch is one UserError naming the file."""

    state_dict = ckpt["state_dict"]
    keys = set(state_dict)
    dim, width = int(state_dict[DIM_KEY].shape[0]), int(state_dict[WIDTH_KEY].shape[0])
    model = ReproductionAstroCLIP(dim, width)
    shapes = model.state_dict()
    if keys != set(shapes):
        raise UserError(key_mismatch(path, keys, set(shapes), "the reproduction's AstroCLIP"))
    wrong = [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})" for k, v in shapes.items()
             if tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        raise UserError(
            f"{path}: {len(wrong)} misshapen key(s) for the reproduction's AstroCLIP with D={dim}, H={width}: "
            f"{'; '.join(wrong[:3])}"
        )
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
