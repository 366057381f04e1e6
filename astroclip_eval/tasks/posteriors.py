"""Posteriors of a label (the redshift, a galaxy property) given a galaxy's embedding: an ensemble of conditional
neural spline flows (zuko), and the scores that say whether their uncertainties are honest.

As the original AstroCLIP's posterior estimation: each member is a neural spline flow over the standardised label,
conditioned on the standardised embedding, trained by Adam on the train split with a held-out fifth for early
stopping; the ensemble's density is the equal mixture of its members. Scores per label and modality:

- nll: the mixture's mean negative log-likelihood of the true values (nats, in the label's own units), and each
  member's, whose mean and spread over the ensemble are the original's figure;
- pit: the probability integral transform F(y). It is exact here: a one-dimensional flow is a monotonic map onto a
  standard normal, so F(y) = Phi(z). Its KS distance from uniform, and the coverage of the central 68% and 95%
  intervals (the PIT inside [0.16, 0.84] and [0.025, 0.975]);
- crps (from samples, energy form) and width68, the median width of the central 68% interval (sharpness);
- the posterior median as a point estimate: R^2, bias and sigma_NMAD, as the point protocols report them.

And its figures: PIT histograms, coverage against the nominal level, example posteriors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.style import use_style
from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.downstream import MODALITIES, r2_score, require_variance
from astroclip_eval.tasks.protocols import standardiser, train_held_out

SCORE_COLUMNS = ["label", "modality", "n", "nll", "nll_members_mean", "nll_members_std", "pit_ks", "coverage68",
                 "coverage68_lo", "coverage68_hi", "coverage95", "coverage95_lo", "coverage95_hi", "crps", "width68",
                 "median_r2", "median_bias", "median_sigma_nmad"]
BLOCK_ROWS = 4096  # rows per forward pass when scoring: memory flat at the published size
# Sample points (rows x samples) per block of a joint posterior's scoring: drawing from a flow over several labels
# runs its autoregressive networks once per label on every point (about 4.7 KB a point at once). Blocks of 4,096 rows
# x 200 samples of the 4-label preset passed 20 GiB at the published size (make bench, 2026-12-07); on 12,000 rows,
# 2^18 points a block peaked at 9.2 GiB in 63 s, 2^16 at 2.3 GiB in 24 s, 2^14 at 1.5 GiB in 21 s.
JOINT_POINTS = 2**14


@dataclass(frozen=True)
class FlowSettings:
    """The ensemble and how each member trains (the original: 10 members, 8 bins, 2-3 blocks of width 16-32,
    25 epochs, Adam 5e-4, an 80/20 split with early stopping)."""

    ensemble: int = 5
    transforms: int = 2
    hidden: int = 32
    bins: int = 8
    epochs: int = 25
    lr: float = 5e-4
    batch: int = 256
    holdout: float = 0.2
    patience: int = 5
    samples: int = 200  # drawn per row for the median, the intervals' width and the CRPS
    min_rows: int = 50  # fewer train rows than this: no posterior
    cosine: bool = False  # the learning rate annealed to 0 over `epochs` by a cosine (the original's joint flows)


JOINT_COLUMNS = ["labels", "modality", "n", "members", "nll", "nll_members_mean", "nll_members_std"]
MARGINAL_COLUMNS = ["label", "modality", "n", "pit_ks", "coverage68", "coverage68_lo", "coverage68_hi", "coverage95",
                    "coverage95_lo", "coverage95_hi", "width68", "median_r2"]


def joint_settings(section: dict) -> FlowSettings:
    """The joint posterior's training from the config's posteriors section: its `joint` entry's ensemble, epochs,
    learning rate and batch (the original's 10, 25, 5e-4 and 128 by the schema's defaults), the learning rate
    annealed by a cosine and no early stop (the best validation epoch kept), as the original trains it; the flows'
    shape and the samples as the 1-D posteriors'."""
    joint = section["joint"]
    shape = {k: v for k, v in section.items() if k in ("transforms", "hidden", "bins", "samples")}
    return FlowSettings(**shape, ensemble=joint["ensemble"], epochs=joint["epochs"], lr=joint["lr"],
                        batch=joint["batch"], cosine=True, patience=joint["epochs"])


def _flow(dims: int, settings: FlowSettings, features: int = 1) -> torch.nn.Module:
    import zuko

    return zuko.flows.NSF(features=features, context=dims, bins=settings.bins, transforms=settings.transforms,
                          hidden_features=(settings.hidden, settings.hidden))


def fit_member(name: str, x: np.ndarray, z: np.ndarray, seed: int, settings: FlowSettings,
               device: torch.device | str = "cpu") -> torch.nn.Module:
    """One flow of z (standardised labels: (n,) for one, (n, L) for a joint density) given x ((n, d),
    standardised), seeded, the best epoch on the held-out part kept. A loss that is not finite stops it in one line
    naming the label."""
    generator = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    zt = torch.as_tensor(z, dtype=torch.float32, device=device).reshape(len(xt), -1)
    order = torch.randperm(len(xt), generator=generator)
    held = max(1, int(settings.holdout * len(xt)))
    fit_rows, held_rows = order[held:].to(device), order[:held].to(device)
    with torch.random.fork_rng(devices=[]):  # zuko draws its initial weights from the global generator
        torch.manual_seed(seed)
        flow = _flow(x.shape[1], settings, zt.shape[1]).to(device)
    opt = torch.optim.Adam(flow.parameters(), lr=settings.lr)
    annealed = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.epochs) if settings.cosine else None
    train_held_out(flow, lambda rows: -flow(xt[rows]).log_prob(zt[rows]).mean(), fit_rows, held_rows, opt,
                   lambda: torch.randperm(len(fit_rows), generator=generator), settings.epochs, settings.batch,
                   settings.patience, annealed, f"posteriors.{name}: a flow of the ensemble")
    return flow


@dataclass
class Posteriors:
    """Per scored row, in the label's units: the mixture's log-density of the truth, each member's, the PIT, and
    samples of the mixture."""

    log_prob: np.ndarray  # (n,)
    member_log_prob: np.ndarray  # (members, n)
    pit: np.ndarray  # (n,)
    samples: np.ndarray  # (n, samples)


def predict(flows: list[torch.nn.Module], x: np.ndarray, y: np.ndarray, scale: tuple[float, float], seed: int,
            samples: int, device: torch.device | str = "cpu") -> Posteriors:
    """The ensemble's posteriors at the rows x for the true values y; `scale` is the label's (mean, std) the flows
    were trained on. Samples are split evenly between the members (an equal mixture)."""
    mean, std = scale
    per_member = max(1, samples // len(flows))
    normal = torch.distributions.Normal(0.0, 1.0)
    logs, pits, draws = [], [], []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for lo in range(0, len(x), BLOCK_ROWS):
            xb = torch.as_tensor(x[lo : lo + BLOCK_ROWS], dtype=torch.float32, device=device)
            zb = torch.as_tensor((y[lo : lo + BLOCK_ROWS] - mean) / std, dtype=torch.float32, device=device)[:, None]
            block_logs, block_pits, block_draws = [], [], []
            for flow in flows:
                dist = flow(xb)
                block_logs.append(dist.log_prob(zb).double().cpu())
                block_pits.append(normal.cdf(dist.transform(zb)[:, 0]).double().cpu())
                block_draws.append(dist.sample((per_member,))[..., 0].T.double().cpu())
            logs.append(torch.stack(block_logs))
            pits.append(torch.stack(block_pits).mean(dim=0))
            draws.append(torch.cat(block_draws, dim=1))
    member = torch.cat(logs, dim=1).numpy() - math.log(std)  # densities of y, not of the standardised label
    mixture = torch.logsumexp(torch.as_tensor(member), dim=0).numpy() - math.log(len(flows))
    return Posteriors(mixture, member, torch.cat(pits).numpy(), torch.cat(draws).numpy() * std + mean)


def pit_ks(pit: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of the PIT values from the uniform distribution."""
    u = np.sort(np.asarray(pit, dtype=np.float64))
    n = u.size
    return float(max((np.arange(1, n + 1) / n - u).max(), (u - np.arange(n) / n).max()))


def inside(pit: np.ndarray, level: float) -> np.ndarray:
    """1 where the true value lies inside the central `level` interval of its posterior, else 0."""
    tail = (1 - level) / 2
    return ((pit >= tail) & (pit <= 1 - tail)).astype(np.float64)


def coverage(pit: np.ndarray, level: float) -> float:
    """Share of true values inside the central `level` interval of their posterior."""
    return float(np.mean(inside(pit, level)))


def crps(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row, the continuous ranked probability score of the sample distribution: E|X - y| - E|X - X'| / 2, the
    second term from the sorted samples in O(S log S)."""
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=1)
    s = x.shape[1]
    first = np.abs(x - np.asarray(truth, dtype=np.float64)[:, None]).mean(axis=1)
    weights = 2 * np.arange(s) - s + 1  # sum_{i,j} |x_i - x_j| = 2 sum_i (2i - s + 1) x_(i)
    return first - (x * weights).sum(axis=1) / s**2


def gaussian_crps(mu: np.ndarray, sigma: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closed form for a normal posterior, against which `crps` is tested."""
    from scipy.stats import norm

    w = (np.asarray(y) - mu) / sigma
    return sigma * (w * (2 * norm.cdf(w) - 1) + 2 * norm.pdf(w) - 1 / np.sqrt(np.pi))


def scores(label: str, modality: str, truth: np.ndarray, post: Posteriors) -> dict:
    """One row of posteriors.csv."""
    median = np.median(post.samples, axis=1)
    q16, q84 = np.quantile(post.samples, [0.16, 0.84], axis=1)
    residual = median - truth
    if label == "redshift":  # as the point protocols report it: dz / (1 + z)
        residual = residual / (1 + truth)
    bias = float(np.median(residual))
    member = -post.member_log_prob.mean(axis=1)
    bounds = {level: bootstrap.bounds(bootstrap.mean, (inside(post.pit, level),)) for level in (0.68, 0.95)}
    return {
        "label": label, "modality": modality, "n": int(truth.size),
        "nll": float(-post.log_prob.mean()),
        "nll_members_mean": float(member.mean()), "nll_members_std": float(member.std(ddof=1) if member.size > 1 else 0.0),
        "pit_ks": pit_ks(post.pit),
        "coverage68": coverage(post.pit, 0.68), "coverage68_lo": bounds[0.68][0], "coverage68_hi": bounds[0.68][1],
        "coverage95": coverage(post.pit, 0.95), "coverage95_lo": bounds[0.95][0], "coverage95_hi": bounds[0.95][1],
        "crps": float(crps(post.samples, truth).mean()), "width68": float(np.median(q84 - q16)),
        "median_r2": r2_score(truth, median), "median_bias": bias,
        "median_sigma_nmad": float(1.4826 * np.median(np.abs(residual - bias))),
    }


def estimate(label: str, modality: str, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray,
             y_valid: np.ndarray, settings: FlowSettings, seed: int = 0,
             device: torch.device | str = "cpu") -> tuple[dict, Posteriors]:
    """Train the ensemble on one modality's train embeddings and score it on the validation rows (both with the
    label), embeddings standardised with the train split, the label too."""
    if y_train.size < settings.min_rows:
        raise UserError(f"posteriors.{label}: {y_train.size} train rows with the label ({modality}), fewer than "
                        f"{settings.min_rows}; nothing written")
    if y_valid.size < 2:
        raise UserError(f"posteriors.{label}: {y_valid.size} valid validation rows have the label; at least 2 are "
                        "needed to score a posterior; nothing written")
    require_variance(f"posteriors.{label}", y_valid)  # the posterior median's R^2 divides by it
    mean, std = standardiser(x_train)  # float64, as every protocol's (tasks/protocols.py says why)
    scale = (float(y_train.mean()), float(y_train.std()) or 1.0)
    flows = [fit_member(label, (x_train - mean) / std, (y_train - scale[0]) / scale[1], seed + m, settings, device)
             for m in range(settings.ensemble)]
    post = predict(flows, (x_valid - mean) / std, y_valid, scale, seed, settings.samples, device)
    if not (np.isfinite(post.log_prob).all() and np.isfinite(post.samples).all()):
        raise UserError(f"posteriors.{label}: the {modality} posterior is not finite for "
                        f"{int((~np.isfinite(post.log_prob)).sum())} rows; nothing written")
    return scores(label, modality, y_valid, post), post


def estimate_joint(labels: list[str], modality: str, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray,
                   y_valid: np.ndarray, settings: FlowSettings, seed: int = 0, device: torch.device | str = "cpu",
                   ) -> tuple[dict, list[dict]]:
    """One joint density over several labels ((n, L) on the rows that have them all) given one modality's
    embedding, as the original AstroCLIP's posterior: the labels standardised with the train split, the NLL of the
    joint density in those standardised units (the original's figure, not comparable to a sum of 1-D NLLs in the
    labels' units), the mixture's and each member's. Each label's calibration from the joint's marginal: the PIT as
    the share of the mixture's samples below the truth, the central intervals' coverage, width68 and the median's
    R^2 in the label's units."""
    name = f"joint({', '.join(labels)})"
    if len(y_train) < settings.min_rows:
        raise UserError(f"posteriors.joint.labels: {len(y_train)} train rows have all of {', '.join(labels)} "
                        f"({modality}), fewer than {settings.min_rows}; nothing written")
    (mean, std), (y_mean, y_std) = standardiser(x_train), standardiser(y_train)
    flows = [fit_member(name, (x_train - mean) / std, (y_train - y_mean) / y_std, seed + m, settings, device)
             for m in range(settings.ensemble)]
    x, z = (x_valid - mean) / std, (y_valid - y_mean) / y_std
    per_member = max(1, settings.samples // len(flows))
    block = max(1, JOINT_POINTS // (per_member * len(flows)))
    logs, pits, medians, widths = [], [], [], []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for lo in range(0, len(x), block):
            xb = torch.as_tensor(x[lo : lo + block], dtype=torch.float32, device=device)
            zb = torch.as_tensor(z[lo : lo + block], dtype=torch.float32, device=device)
            dists = [flow(xb) for flow in flows]
            logs.append(torch.stack([d.log_prob(zb).double().cpu() for d in dists]))
            draws = torch.cat([d.sample((per_member,)).double().cpu() for d in dists])  # (samples, rows, L)
            pits.append((draws <= zb.double().cpu()[None]).double().mean(dim=0))
            q16, q50, q84 = torch.quantile(draws, torch.tensor([0.16, 0.5, 0.84], dtype=torch.float64), dim=0)
            medians.append(q50)
            widths.append(q84 - q16)
    member = torch.cat(logs, dim=1).numpy()  # (members, n): standardised units
    mixture = torch.logsumexp(torch.as_tensor(member), dim=0).numpy() - math.log(len(flows))
    if not np.isfinite(mixture).all():
        raise UserError(f"posteriors.{name}: the {modality} joint posterior is not finite for "
                        f"{int((~np.isfinite(mixture)).sum())} rows; nothing written")
    per_flow = -member.mean(axis=1)
    joint = {"labels": ", ".join(labels), "modality": modality, "n": int(len(z)), "members": len(flows),
             "nll": float(-mixture.mean()), "nll_members_mean": float(per_flow.mean()),
             "nll_members_std": float(per_flow.std(ddof=1) if per_flow.size > 1 else 0.0)}
    pit, median = torch.cat(pits).numpy(), torch.cat(medians).numpy() * y_std + y_mean
    width = torch.cat(widths).numpy() * y_std
    marginals = []
    for j, label in enumerate(labels):
        bounds = {level: bootstrap.bounds(bootstrap.mean, (inside(pit[:, j], level),)) for level in (0.68, 0.95)}
        marginals.append({
            "label": label, "modality": modality, "n": int(len(z)), "pit_ks": pit_ks(pit[:, j]),
            "coverage68": coverage(pit[:, j], 0.68), "coverage68_lo": bounds[0.68][0], "coverage68_hi": bounds[0.68][1],
            "coverage95": coverage(pit[:, j], 0.95), "coverage95_lo": bounds[0.95][0], "coverage95_hi": bounds[0.95][1],
            "width68": float(np.median(width[:, j])), "median_r2": r2_score(y_valid[:, j], median[:, j]),
        })
    return joint, marginals


def pit_panels(pits: dict[tuple[str, str], np.ndarray], bins: int = 20) -> plt.Figure:
    """PIT histograms, one row per label, one column per query modality: flat for calibrated posteriors, U-shaped for
    overconfident ones, a hump for underconfident ones; the dashed line is the uniform count."""
    use_style()
    labels = list(dict.fromkeys(label for label, _ in pits))
    fig, axes = plt.subplots(len(labels), 2, figsize=(8, 2.4 * len(labels)), squeeze=False, constrained_layout=True)
    for i, label in enumerate(labels):
        for j, modality in enumerate(MODALITIES):
            ax = axes[i, j]
            pit = pits.get((label, modality))
            if pit is None:
                ax.set_axis_off()
                continue
            ax.hist(pit, bins=bins, range=(0, 1), color="C0")
            ax.axhline(pit.size / bins, color="black", ls="--", lw=0.8)
            ax.set_title(f"{label}, {modality} embedding", fontsize=9)
            ax.set_xlabel("PIT")
    fig.suptitle("Probability integral transform of the true value under each posterior")
    return fig


def coverage_curves(pits: dict[tuple[str, str], np.ndarray]) -> plt.Figure:
    """Share of true values inside the central interval of each nominal level, against that level: on the diagonal
    for calibrated posteriors, below it for overconfident ones."""
    use_style()
    levels = np.linspace(0.05, 0.95, 19)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), squeeze=False, constrained_layout=True)
    for j, modality in enumerate(MODALITIES):
        ax = axes[0, j]
        for label, pit in ((label, pit) for (label, m), pit in pits.items() if m == modality):
            shares = [coverage(pit, level) for level in levels]
            ax.plot(levels, shares, marker=".", label=label)
        ax.plot([0, 1], [0, 1], color="black", ls="--", lw=0.8)
        ax.set_title(f"{modality} embedding", fontsize=9)
        ax.set_xlabel("nominal level of the central interval")
        ax.set_ylabel("share of true values inside")
        ax.legend(fontsize=7)
    return fig


def posterior_examples(samples: np.ndarray, truth: np.ndarray, label: str, title: str) -> plt.Figure:
    """Six posteriors (histograms of their samples) with the true value marked."""
    use_style()
    fig, axes = plt.subplots(2, 3, figsize=(10, 5), constrained_layout=True)
    for ax, draws, true in zip(axes.ravel(), samples, truth):
        ax.hist(draws, bins=30, color="C0", density=True)
        ax.axvline(true, color="C3", lw=1.5, label="true value")
        ax.set_xlabel(label)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    return fig
