"""The reproduction's checkpoints and inputs, made from the recipes of its model spec (weights, inputs, file layout),
and an independent functional forward pass written from the spec's text, for checking the built-in loader."""

from __future__ import annotations

import zlib
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from astroclip_eval.models.reproduction import ReproductionAstroCLIP

GOLDEN = Path(__file__).parent / "data/reproduction-golden-128.npz"
EMISSION_LINES = (3727.1, 4862.7, 4960.3, 5008.2, 6564.6, 6585.3, 6718.3, 6732.7)
SIZE = 152


# -- weights (spec section 6) ------------------------------------------------------------------------------
def recipe_tensor(key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    x = np.random.default_rng(zlib.crc32(key.encode("utf-8")) ^ seed).standard_normal(shape)
    name = key.rsplit(".", 1)[1]
    is_bn = any(f".{bn}." in key for bn in ("bn1", "bn2", "bn3", "downsample.1"))
    if key.endswith(("conv1.2.weight", "conv2.2.weight", "conv3.2.weight")) and ".encoder." in key:
        x = 0.25 + 0.01 * x
    elif is_bn:
        x = {"weight": 1 + 0.1 * x, "bias": 0.1 * x, "running_mean": 0.1 * x, "running_var": 1 + 0.1 * np.abs(x)}[name]
    elif name == "weight":
        x = x * np.sqrt(2 / np.prod(shape[1:]))
    else:
        x = 0.01 * x
    return torch.from_numpy(x.astype(np.float32))


def recipe_state_dict(dim: int = 128, width: int = 128, seed: int = 7) -> OrderedDict:
    """The state_dict of the spec's weight recipe, with PyTorch's `_metadata` like a real one."""
    state = ReproductionAstroCLIP(dim, width).state_dict()
    for key, value in state.items():
        state[key] = recipe_tensor(key, tuple(value.shape), seed)
    return state


# -- inputs (spec section 7) -------------------------------------------------------------------------------
def recipe_row(seed: int, i: int) -> tuple[float, np.ndarray, np.ndarray, int]:
    """(redshift, image (152, 152, 3), spectrum (7781,), targetid) of input row i, float32 arrays."""
    rng = np.random.default_rng([seed, i])
    z = rng.uniform(0, 0.9)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    image = np.zeros((SIZE, SIZE, 3))
    for k in range(1 + rng.integers(0, 4)):
        cy, cx = 75.5 + rng.normal(0, 1.0, 2) if k == 0 else rng.uniform(8, 144, 2)
        amp = 10 ** rng.uniform(-1.5, 0.4) if k == 0 else 10 ** rng.uniform(-1.8, 0.0)
        re = rng.uniform(1.5, 10) if k == 0 else rng.uniform(0.8, 4)
        n, q, theta = rng.uniform(0.5, 2.5), rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        col = (rng.uniform(0.3, 0.8), 1.0, rng.uniform(1.1, 2.0))
        u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
        v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
        r = np.sqrt(u**2 + (v / q) ** 2 + 1)
        blob = amp * np.exp(-((r / re) ** (1 / n)) + (1 / re) ** (1 / n))
        for b in range(3):
            image[:, :, b] += col[b] * blob
    image += 0.003 * rng.standard_normal((SIZE, SIZE, 3))
    w = 3600 + 0.8 * np.arange(7781)
    a, alpha, brk = rng.uniform(0.5, 12), rng.uniform(-1.5, 1.5), rng.uniform(0, 0.5)
    cont = np.clip(a * (w / 6000) ** alpha * (1 - brk / (1 + np.exp((w / (1 + z) - 4000) / 30))), 0.5, 20)
    amps, sig = a * rng.uniform(0, 3, 8), rng.uniform(1.0, 3.0)
    for amp_j, line in zip(amps, EMISSION_LINES):
        cont = cont + amp_j * np.exp(-0.5 * ((w - line * (1 + z)) / sig) ** 2)
    spectrum = cont + rng.uniform(0.05, 0.3) * np.sqrt(cont) * rng.standard_normal(7781)
    if i == 3:
        spectrum = np.zeros(7781)
    if i == 10:
        spectrum = np.full(7781, 2.0)
    return float(np.float32(z)), image.astype(np.float32), spectrum.astype(np.float32), 39627000000000000 + 10**7 * seed + i


def recipe_rows(seed: int, n: int) -> dict[str, np.ndarray]:
    rows = [recipe_row(seed, i) for i in range(n)]
    return {
        "redshifts": np.array([r[0] for r in rows], dtype=np.float32),
        "images": np.stack([r[1] for r in rows]),
        "spectra": np.stack([r[2] for r in rows]),
        "targetids": np.array([r[3] for r in rows], dtype=np.int64),
    }


def write_published(
    path: Path, sizes: list[int], valid_seed: int = 5, train_seed: int = 6, tail: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """A file in the published layout: validation row i is input row i of `valid_seed` (spec section 7), placed in
    the groups' validation tails in order; the training heads hold rows of `train_seed`. `tail` replaces the last
    validation rows' images and spectra (other inputs to embed). Returns the validation rows."""
    n_train = [int(0.8 * n) for n in sizes]
    valid = recipe_rows(valid_seed, sum(sizes) - sum(n_train))
    for name, rows in (tail or {}).items():
        valid[name][-len(rows):] = rows
    train = recipe_rows(train_seed, sum(n_train))
    with h5py.File(path, "w") as f:
        t = v = 0
        for g, (n, nt) in enumerate(zip(sizes, n_train)):
            grp = f.create_group(str(g))
            for name in valid:
                grp.create_dataset(name, data=np.concatenate([train[name][t : t + nt], valid[name][v : v + n - nt]]))
            t, v = t + nt, v + n - nt
    return valid


# -- checkpoint files (spec sections 4 and 5) ---------------------------------------------------------------
def _callbacks(run_dir: Path, best: str, best_score: float, last_epoch: int) -> dict:
    best_path = str(run_dir / best)
    score = torch.tensor(best_score, dtype=torch.float32)
    fields = ("monitor", "best_model_score", "best_model_path", "current_score", "dirpath", "best_k_models",
              "kth_best_model_path", "kth_value", "last_model_path")
    tail = "'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
    return {
        "ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min', " + tail: dict(zip(fields, (
            "val/loss", score, best_path, score, str(run_dir), {best_path: score}, best_path, score, ""))),
        "ModelCheckpoint{'monitor': None, 'mode': 'min', " + tail: dict(zip(fields, (
            None, None, str(run_dir / f"astroclip-epoch={last_epoch}-last.ckpt"), None, str(run_dir), {}, "",
            torch.tensor(float("inf")), str(run_dir / "last.ckpt")))),
    }


def checkpoint(state_dict: OrderedDict, epoch: int, callbacks: dict, steps_per_epoch: int = 10) -> dict:
    """A pytorch-lightning 1.9.5 checkpoint dict of the reproduction (no hyper_parameters; 1-element Adam moments)."""
    progress = {"total": {"ready": epoch + 1, "completed": epoch}, "current": {"ready": epoch + 1, "completed": epoch}}
    n_params = sum(1 for k in state_dict if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    moment = {"step": torch.tensor(float((epoch + 1) * steps_per_epoch)), "exp_avg": torch.zeros(1), "exp_avg_sq": torch.zeros(1)}
    return {
        "epoch": epoch,
        "global_step": (epoch + 1) * steps_per_epoch,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state_dict,
        "loops": {name: {"epoch_progress": progress} for name in ("fit_loop", "validate_loop", "test_loop", "predict_loop")},
        "callbacks": callbacks,
        "optimizer_states": [{
            "state": {i: dict(moment) for i in range(n_params)},
            "param_groups": [{"lr": 0.0005, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0.0001, "amsgrad": False,
                              "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                              "fused": None, "params": list(range(n_params))}],
        }],
        "lr_schedulers": [],
    }


def write_run_dir(run_dir: Path, dim: int = 128, width: int = 128, seed: int = 7) -> None:
    """The spec's test run directory: epoch=03-min (2.71), epoch=07-min (2.64, weights of `seed`, the best),
    epoch=9-last and last.ckpt (other weights), and epoch embedding files."""
    run_dir.mkdir(parents=True)
    best = "astroclip-epoch=07-min.ckpt"
    files = [
        ("astroclip-epoch=03-min.ckpt", 3, seed + 1003, "astroclip-epoch=03-min.ckpt", 2.71),
        (best, 7, seed, best, 2.64),
        ("astroclip-epoch=9-last.ckpt", 9, seed + 1009, best, 2.64),
    ]
    for name, epoch, weights, best_name, score in files:
        ckpt = checkpoint(recipe_state_dict(dim, width, weights), epoch, _callbacks(run_dir, best_name, score, epoch))
        torch.save(ckpt, run_dir / name)
    (run_dir / "last.ckpt").write_bytes((run_dir / "astroclip-epoch=9-last.ckpt").read_bytes())
    for kind in ("image", "spectrum"):
        torch.save(torch.zeros(4, dim), run_dir / f"epoch9_{kind}_embeddings.pt")


# -- an independent forward pass, straight from the spec's text (section 2 and 3) ---------------------------
def _bn(x: torch.Tensor, sd: dict, key: str) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = sd[f"{key}.running_mean"].view(shape), sd[f"{key}.running_var"].view(shape)
    return (x - mean) / torch.sqrt(var + 1e-5) * sd[f"{key}.weight"].view(shape) + sd[f"{key}.bias"].view(shape)


def _standardise(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    std = x.std(dim=dims, keepdim=True, unbiased=True)
    return (x - x.mean(dim=dims, keepdim=True)) / torch.where(std == 0, 1e-10, std)


def spec_image_embedding(sd: dict, images: np.ndarray) -> np.ndarray:
    """(n, 152, 152, 3) raw images -> (n, D) unit vectors, written from the spec without the package's modules."""
    x = _standardise(torch.from_numpy(images).permute(0, 3, 1, 2)[:, :, 28:124, 28:124], (2, 3))
    p = "encoders.0"
    x = F.max_pool2d(F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=2, padding=3), sd, f"{p}.bn1")), 3, 2, 1)
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for b in range(blocks):
            k = f"{p}.layer{layer}.{b}"
            s = 2 if b == 0 and layer > 1 else 1
            h = F.relu(_bn(F.conv2d(x, sd[f"{k}.conv1.weight"]), sd, f"{k}.bn1"))
            h = F.relu(_bn(F.conv2d(h, sd[f"{k}.conv2.weight"], stride=s, padding=1), sd, f"{k}.bn2"))
            h = _bn(F.conv2d(h, sd[f"{k}.conv3.weight"]), sd, f"{k}.bn3")
            short = _bn(F.conv2d(x, sd[f"{k}.downsample.0.weight"], stride=s), sd, f"{k}.downsample.1") if b == 0 else x
            x = F.relu(h + short)
    h = F.relu(F.linear(x.mean(dim=(2, 3)), sd[f"{p}.fc.0.weight"], sd[f"{p}.fc.0.bias"]))
    e = F.linear(h, sd[f"{p}.fc.2.weight"], sd[f"{p}.fc.2.bias"])
    return (e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)).numpy()


def spec_spectrum_embedding(sd: dict, spectra: np.ndarray) -> np.ndarray:
    """(n, 7781) raw spectra -> (n, D) unit vectors, written from the spec without the package's modules."""
    x = _standardise(torch.from_numpy(spectra), (1,)).unsqueeze(1)
    p = "encoders.1.encoder"
    for i, (kernel, pool) in enumerate(((5, 5), (11, 11), (21, 0)), start=1):
        x = F.conv1d(x, sd[f"{p}.conv{i}.0.weight"], sd[f"{p}.conv{i}.0.bias"], padding=kernel // 2)
        x = (x - x.mean(dim=2, keepdim=True)) / torch.sqrt(x.var(dim=2, unbiased=False, keepdim=True) + 1e-5)
        slope = sd[f"{p}.conv{i}.2.weight"].view(1, -1, 1)
        x = torch.where(x >= 0, x, slope * x)
        if pool:
            x = F.max_pool1d(x, pool, stride=pool, padding=pool // 2)
    h, a = x[:, :256], x[:, 256:]
    features = (h * torch.softmax(a, dim=2)).sum(dim=2)
    e = F.linear(
        F.relu(F.linear(features, sd[f"{p}.mlp.0.weight"], sd[f"{p}.mlp.0.bias"])), sd[f"{p}.mlp.2.weight"], sd[f"{p}.mlp.2.bias"]
    )
    return (e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)).numpy()
