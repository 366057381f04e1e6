"""The original AstroCLIP's released model (PolymathicAI; a Lightning checkpoint of `AstroClipModel`), rebuilt in
plain torch from a checkpoint read by `astroclip_eval.io.structural`, so that nothing pickled in it runs.

Image side: the original collator's asinh colour mapping, the image transposed, a 144-pixel centre crop, a DINOv2
ViT without class token or position embedding, a cross-attention head and an MLP. Spectrum side: standardised
spectra (std floored at 0.2) in 20-bin windows of stride 10 (the last one always dropped) after a statistics token,
a SpecFormer transformer, a cross-attention head and a residual MLP. Every size comes from the file; anything this
code does not implement (another block type, register tokens, an unexpected eps) is refused in one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from astroclip_eval.io.crop import centre_crop
from astroclip_eval.io.data import SPECTRUM_LENGTH
from astroclip_eval.io.errors import UserError, key_mismatch
from astroclip_eval.io.structural import Inert, class_path

IMAGE_CROP = 144
SECTION, OVERLAP, TOKEN_WIDTH = 20, 10, 22
VIT_EPS, SPECFORMER_EPS, HEAD_EPS = 1e-6, 1e-5, 1e-5


@dataclass(frozen=True)
class Architecture:
    vit_dim: int
    vit_depth: int
    vit_heads: int
    patch: int
    chunks: list[list[int]] | None  # global block indices per chunk; None when blocks are not chunked
    spec_dim: int
    spec_layers: int
    spec_heads: int
    max_len: int
    dim: int
    image_heads: int
    spectrum_heads: int
    image_kdim: int
    spectrum_kdim: int


# -- reading the pickled modules --------------------------------------------------------------------------------
class _Reader:
    """Walks the stand-ins; every complaint names the file and the attribute path."""

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def fail(self, where: str, what: str) -> UserError:
        return UserError(f"{self.path}: {where}: {what}; the released AstroCLIP loader does not implement it")

    def get(self, obj: Any, where: str, dotted: str) -> Any:
        node = obj
        for step in dotted.split("."):
            state = node.state if isinstance(node, Inert) and isinstance(node.state, dict) else {}
            if step in state:
                node = state[step]
            elif step in (state.get("_modules") or {}):
                node = state["_modules"][step]
            elif isinstance(node, Inert) and step in node.items:
                node = node.items[step]
            else:
                raise UserError(f"{self.path}: {where}.{dotted}: not found in the checkpoint's pickled modules")
        return node

    def kind(self, obj: Any, where: str, dotted: str, *suffixes: str) -> Any:
        node = self.get(obj, where, dotted) if dotted else obj
        path = class_path(node) or type(node).__name__
        if not path.endswith(suffixes):
            raise self.fail(f"{where}.{dotted}".rstrip("."), f"class {path} (expected {' or '.join(suffixes)})")
        return node

    def value(self, obj: Any, where: str, dotted: str, expected: Any) -> None:
        found = self.get(obj, where, dotted)
        if found != expected:
            raise self.fail(f"{where}.{dotted}", f"{found!r} (expected {expected!r})")

    def eps(self, obj: Any, where: str, dotted: str, expected: float) -> None:
        found = self.get(obj, where, dotted)
        if not isinstance(found, float) or not math.isclose(found, expected, rel_tol=1e-9):
            raise self.fail(f"{where}.{dotted}", f"LayerNorm eps {found!r} (expected {expected})")

    def gelu(self, obj: Any, where: str, dotted: str) -> None:
        act = self.kind(obj, where, dotted, "GELU")
        self.value(act, f"{where}.{dotted}", "approximate", "none")


def recognise(ckpt: Any) -> bool:
    """True for a checkpoint tree of the original's AstroClipModel (its encoders pickled in its hyper-parameters)."""
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    return (
        isinstance(hp, Mapping)
        and (class_path(hp.get("image_encoder")) or "").endswith("ImageHead")
        and (class_path(hp.get("spectrum_encoder")) or "").endswith("SpectrumHead")
    )


def _head(r: _Reader, encoder: Any, where: str) -> tuple[int, int, int]:
    """(D, heads, kdim) of a cross-attention head, after checking it is the one implemented here."""
    r.kind(encoder, where, "cross_attention", "CrossAttentionHead")
    mha = r.kind(encoder, where, "cross_attention.multihead_attn", "MultiheadAttention")
    at = f"{where}.cross_attention.multihead_attn"
    r.value(mha, at, "batch_first", True)
    r.value(mha, at, "add_zero_attn", False)
    for bias in ("bias_k", "bias_v"):
        if r.get(mha, at, bias) is not None:
            raise r.fail(f"{at}.{bias}", "set (expected None)")
    r.eps(encoder, where, "cross_attention.layernorm.eps", HEAD_EPS)
    r.kind(encoder, where, "mlp", "MLP")
    r.gelu(encoder, where, "mlp.activation")
    kdim, vdim = r.get(mha, at, "kdim"), r.get(mha, at, "vdim")
    if kdim != vdim:
        raise r.fail(f"{at}.vdim", f"{vdim} differs from kdim {kdim}")
    return int(r.get(mha, at, "embed_dim")), int(r.get(mha, at, "num_heads")), int(kdim)


def read_architecture(ckpt: dict, path: str | os.PathLike) -> Architecture:
    """Every size of the model from its pickled modules, refusing what this module does not implement."""
    r = _Reader(path)
    hp = ckpt["hyper_parameters"]
    image, spectrum = hp["image_encoder"], hp["spectrum_encoder"]
    vit = r.kind(image, "image_encoder", "backbone", "DinoVisionTransformer")
    at = "image_encoder.backbone"
    if r.get(vit, at, "num_register_tokens") != 0:
        raise r.fail(f"{at}.num_register_tokens", f"{r.get(vit, at, 'num_register_tokens')} register tokens")
    vit_dim, vit_heads, patch = (int(r.get(vit, at, k)) for k in ("embed_dim", "num_heads", "patch_size"))
    r.eps(vit, at, "norm.eps", VIT_EPS)
    chunked = bool(r.get(vit, at, "chunked_blocks"))
    containers = list(r.get(vit, at, "blocks").state["_modules"].items())
    blocks: list[tuple[str, Any]] = []
    chunks: list[list[int]] | None = [] if chunked else None
    for name, node in containers:
        if chunked:
            r.kind(node, f"{at}.blocks.{name}", "", "BlockChunk")
            members = [
                (f"{name}.{i}", b) for i, b in node.state["_modules"].items() if not (class_path(b) or "").endswith("Identity")
            ]
            chunks.append([int(n.split(".")[1]) for n, _ in members])
            blocks += members
        else:
            blocks.append((name, node))
    for name, block in blocks:
        where = f"{at}.blocks.{name}"
        r.kind(block, where, "", "NestedTensorBlock", "layers.block.Block")
        r.kind(block, where, "attn", "MemEffAttention", "layers.attention.Attention")
        r.value(block, where, "attn.num_heads", vit_heads)
        for ls in ("ls1", "ls2"):
            r.kind(block, where, ls, "LayerScale")
        r.kind(block, where, "mlp", "layers.mlp.Mlp")
        r.gelu(block, where, "mlp.act")
        for norm in ("norm1", "norm2"):
            r.eps(block, where, f"{norm}.eps", VIT_EPS)

    spec = r.kind(spectrum, "spectrum_encoder", "backbone", "SpecFormer")
    at = "spectrum_encoder.backbone"
    hparams = r.get(spec, at, "_hparams")
    settings = hparams.items if isinstance(hparams, Inert) else dict(hparams)
    for key, expected in (("input_dim", TOKEN_WIDTH), ("slice_section_length", SECTION), ("slice_overlap", OVERLAP),
                          ("norm_first", False)):
        if settings.get(key) != expected:
            raise r.fail(f"{at}._hparams.{key}", f"{settings.get(key)!r} (expected {expected!r})")
    spec_dim, spec_layers, spec_heads, max_len = (int(settings[k]) for k in ("embed_dim", "num_layers", "num_heads", "max_len"))
    r.eps(spec, at, "final_layernorm.eps", SPECFORMER_EPS)
    for layer in range(spec_layers):
        r.kind(spec, at, f"blocks.{layer}.attention", "SelfAttention")
        r.value(spec, at, f"blocks.{layer}.attention.causal", False)
        r.value(spec, at, f"blocks.{layer}.attention.num_heads", spec_heads)
        r.gelu(spec, at, f"blocks.{layer}.mlp.activation")
        for norm in ("layernorm1", "layernorm2"):
            r.eps(spec, at, f"blocks.{layer}.{norm}.eps", SPECFORMER_EPS)

    dim, image_heads, image_kdim = _head(r, image, "image_encoder")
    spectrum_dim, spectrum_heads, spectrum_kdim = _head(r, spectrum, "spectrum_encoder")
    if spectrum_dim != dim:
        raise r.fail("spectrum_encoder.cross_attention.multihead_attn.embed_dim", f"{spectrum_dim} (image head: {dim})")
    return Architecture(vit_dim, len(blocks), vit_heads, patch, chunks, spec_dim, spec_layers, spec_heads, max_len, dim,
                        image_heads, spectrum_heads, image_kdim, spectrum_kdim)


# -- the model, named so that the checkpoint's state_dict loads strictly -------------------------------------------
def _attention(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax attention over (n, T, 3, heads, d) packed q, k, v -> (n, T, heads * d)."""
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).flatten(2)


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))


class _ViTAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        return self.proj(_attention(self.qkv(x).view(n, t, 3, self.heads, c // self.heads), self.heads))


class _ViTMlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=VIT_EPS), _ViTAttention(dim, heads), _LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=VIT_EPS), _ViTMlp(dim), _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1.gamma * self.attn(self.norm1(x))
        return x + self.ls2.gamma * self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)


class _ViT(nn.Module):
    """DINOv2's ViT as the original's image head drives it: patch tokens only (no class token, no positions)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        c, tokens = arch.vit_dim, (IMAGE_CROP // arch.patch) ** 2
        # stored, never used by the image head
        self.cls_token, self.pos_embed = nn.Parameter(torch.empty(1, 1, c)), nn.Parameter(torch.empty(1, tokens + 1, c))
        self.mask_token = nn.Parameter(torch.empty(1, c))
        self.patch_embed = _PatchEmbed(arch.vit_dim, arch.patch)
        if arch.chunks is None:
            self.blocks = nn.ModuleList(_ViTBlock(arch.vit_dim, arch.vit_heads) for _ in range(arch.vit_depth))
            self.order = list(self.blocks)
        else:  # chunk c holds its blocks at their global indices, padded at the front with placeholders
            self.blocks = nn.ModuleList(
                nn.ModuleList([nn.Identity() for _ in range(chunk[0])] + [_ViTBlock(arch.vit_dim, arch.vit_heads) for _ in chunk])
                if chunk else nn.ModuleList()
                for chunk in arch.chunks
            )
            self.order = [b for chunk in self.blocks for b in chunk if isinstance(b, _ViTBlock)]
        self.norm = nn.LayerNorm(arch.vit_dim, eps=VIT_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        for block in self.order:
            x = block(x)
        return self.norm(x)


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.attention, self.projection = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, e = x.shape
        qkv = self.attention(x).view(n, t, 3, self.heads, e // self.heads)  # q | k | v along features, head-major
        return self.projection(_attention(qkv, self.heads))


class _MLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(F.gelu(self.encoder(x)))


class _SpecBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.layernorm1, self.attention = nn.LayerNorm(dim, eps=SPECFORMER_EPS), _SelfAttention(dim, heads)
        self.layernorm2, self.mlp = nn.LayerNorm(dim, eps=SPECFORMER_EPS), _MLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm1(x))
        return x + self.mlp(self.layernorm2(x))


class _SpecFormer(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.data_embed = nn.Linear(TOKEN_WIDTH, arch.spec_dim)
        self.position_embed = nn.Embedding(arch.max_len, arch.spec_dim)
        self.blocks = nn.ModuleList(_SpecBlock(arch.spec_dim, arch.spec_heads) for _ in range(arch.spec_layers))
        self.final_layernorm = nn.LayerNorm(arch.spec_dim, eps=SPECFORMER_EPS)
        self.head = nn.Linear(arch.spec_dim, TOKEN_WIDTH)  # the pre-training reconstruction head: stored, unused

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.data_embed(tokens) + self.position_embed.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.final_layernorm(x)


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, kdim: int):
        super().__init__()
        self.query = nn.Parameter(torch.empty(1, 1, dim))
        self.multihead_attn = nn.MultiheadAttention(dim, heads, kdim=kdim, vdim=kdim, batch_first=True)
        self.layernorm = nn.LayerNorm(dim, eps=HEAD_EPS)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query = self.query.expand(tokens.shape[0], -1, -1)
        out, _ = self.multihead_attn(query, tokens, tokens, need_weights=False)
        return self.layernorm(out)


class _Head(nn.Module):
    def __init__(self, backbone: nn.Module, dim: int, heads: int, kdim: int, residual: bool):
        super().__init__()
        self.backbone, self.cross_attention, self.mlp = backbone, _CrossAttention(dim, heads, kdim), _MLP(dim)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cross_attention(self.backbone(x))
        return ((y if self.residual else 0) + self.mlp(y)).squeeze(1)


def image_input(images: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) raw g, r, z -> (n, 3, 144, 144): the original collator's asinh colours, transposed, centre crop."""
    x = centre_crop(images, IMAGE_CROP, "the released AstroCLIP's").float()
    g, r, z = 6.0 * x[..., 0] + 0.03, 3.4 * x[..., 1] + 0.03, 2.2 * x[..., 2] + 0.03
    intensity = (g.clamp_min(0) + r.clamp_min(0) + z.clamp_min(0)) / 3
    f = torch.asinh(20 * intensity) / math.sqrt(20)
    intensity = torch.where(intensity == 0, torch.full_like(intensity, 1e-6), intensity)
    rgb = (torch.stack([z, r, g], dim=-1) * (f / intensity).unsqueeze(-1)).clamp(0, 1)
    return rgb.permute(0, 3, 2, 1)  # channels first, and the two spatial axes swapped, as the model was trained


def spectrum_tokens(spectra: torch.Tensor) -> torch.Tensor:
    """(n, 7781) raw flux -> (n, 778, 22): a statistics token, then 777 windows of 20 standardised bins."""
    x = spectra.float()
    mean, std = x.mean(dim=1, keepdim=True), x.std(dim=1, keepdim=True).clamp_min(0.2)
    windows = ((x - mean) / std).unfold(1, SECTION, SECTION - OVERLAP)  # starts 0, 10, ..., 7760
    tokens = F.pad(windows, (TOKEN_WIDTH - SECTION, 0))
    stats = F.pad(torch.cat([(mean - 2) / 2, (std - 2) / 8], dim=1), (0, TOKEN_WIDTH - 2)).unsqueeze(1)
    return torch.cat([stats, tokens], dim=1)


class ReleasedAstroCLIP(nn.Module):
    """The original AstroCLIP's two encoders; outputs are not normalised (the workflow's kNN and search are cosine)."""

    image_crop = IMAGE_CROP

    def __init__(self, arch: Architecture):
        super().__init__()
        self.embedding_dim = arch.dim
        self.image_encoder = _Head(_ViT(arch), arch.dim, arch.image_heads,
                                   arch.image_kdim, residual=False)
        self.spectrum_encoder = _Head(_SpecFormer(arch), arch.dim, arch.spectrum_heads, arch.spectrum_kdim, residual=True)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image_input(images))

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        if spectra.shape[1] != SPECTRUM_LENGTH:
            raise UserError(f"spectra have {spectra.shape[1]} bins, the released AstroCLIP expects {SPECTRUM_LENGTH}")
        return self.spectrum_encoder(spectrum_tokens(spectra))


def build(ckpt: dict, path: str | os.PathLike) -> ReleasedAstroCLIP:
    """The model from a structurally read checkpoint, loaded strictly; mismatches are one line naming the file."""

    arch = read_architecture(ckpt, path)
    state_dict = ckpt["state_dict"]
    model = ReleasedAstroCLIP(arch)
    expected = model.state_dict()
    if set(state_dict) != set(expected):
        raise UserError(key_mismatch(path, set(state_dict), set(expected), "the released AstroCLIP of its pickled modules"))
    wrong = [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        raise UserError(f"{path}: {len(wrong)} misshapen key(s) for the released AstroCLIP: {'; '.join(wrong[:3])}")
    model.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True)
    return model.eval()
