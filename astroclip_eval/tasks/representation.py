"""What the embedding space itself says: how many of its directions a model uses, how evenly its embeddings spread
on the sphere, how close a galaxy's image and spectrum sit, and whether neighbours agree across modalities and share
labels. Measured on the valid validation rows' L2-normalised embeddings; none needs a label except the last.

- rankme: exp of the entropy of the normalised singular values of the (uncentred) embedding matrix, each plus 1e-7
  (Garrido et al. 2023): the number of directions in use, at most the dimension;
- directions_90, directions_99: the fewest leading singular directions holding 90% and 99% of the squared singular
  values (the uncentred second moment, the spectrum rankme reads);
- uniformity: log of the mean over all pairs i != j of exp(-2 |z_i - z_j|^2) (Wang & Isola 2020), exact, in blocks;
- alignment: the mean over galaxies of |z_image - z_spectrum|^2;
- modality_gap: the distance between the two modalities' mean embeddings (Liang et al. 2022);
- mutual_knn{k}: the mean over galaxies of the share of its k nearest image neighbours that are also among its k
  nearest spectrum neighbours (cosine, itself excluded);
- hubness{k}: the skewness (scipy's, biased) of how often each galaxy is among the others' k nearest;
- property_consistency: the mean over galaxies of a label's standard deviation over its k nearest neighbours (among
  the galaxies that have the label), divided by the label's standard deviation over them.

The means over galaxies carry a 95% bootstrap interval over the galaxies (their neighbour sets fixed); the others
are properties of the whole set of rows, where resampling rows would change what is measured, and carry none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import torch
from matplotlib.ticker import ScalarFormatter

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import MODALITIES
from astroclip_eval.style import use_style
from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.neighbours import block_rows, require_finite, top_k

LINES = {"image": "-", "spectrum": "--"}  # a modality's line in the figures
MARKERS = {"image": "o", "spectrum": "s"}
RANKME_EPS = 1e-7  # added to each normalised singular value (Garrido et al. 2023)
UNIFORMITY_T = 2.0  # Wang & Isola's t
SHARES = (0.90, 0.99)
COLUMNS = ["modality", "metric", "label", "n", "value", "value_lo", "value_hi"]
SPECTRUM_COLUMNS = ["modality", "direction", "singular_value", "share", "cumulative_share"]


def unit(x: np.ndarray, what: str) -> np.ndarray:
    """float64 rows scaled to unit length; rows that are not finite, or zero, refused in one line naming `what`."""
    require_finite(x, what)
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise UserError(f"{what}: {int((norms == 0).sum())} rows are all zero; they have no direction to measure")
    return x / norms


def singular_values(z: np.ndarray) -> np.ndarray:
    """The singular values of z (n x d), largest first, from its d x d second-moment matrix in float64 (n d^2
    operations, not the SVD's; the smallest lose digits, which rankme's 1e-7 floor does not read)."""
    gram = z.T @ z
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None))


def rankme(s: np.ndarray) -> float:
    """exp of the entropy of s / sum(s) + 1e-7."""
    p = s / s.sum() + RANKME_EPS
    return float(np.exp(-np.sum(p * np.log(p))))


def directions(s: np.ndarray, share: float) -> int:
    """The fewest leading directions whose squared singular values hold `share` of their sum."""
    cumulative = np.cumsum(s**2) / np.sum(s**2)
    return int(min(np.searchsorted(cumulative, share - 1e-12) + 1, len(s)))


def spectrum_table(z: dict[str, np.ndarray]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Each modality's singular values, their share of the squared sum and its running total, and the values."""
    frames, values = [], {}
    for modality in MODALITIES:
        s = values[modality] = singular_values(z[modality])
        share = s**2 / np.sum(s**2)
        frames.append(pd.DataFrame({"modality": modality, "direction": np.arange(1, len(s) + 1), "singular_value": s,
                                    "share": share, "cumulative_share": np.cumsum(share)}))
    return pd.concat(frames, ignore_index=True)[SPECTRUM_COLUMNS], values


def uniformity(z: np.ndarray, device: torch.device | str = "cpu") -> float:
    """log mean_{i != j} exp(-t |z_i - z_j|^2) of unit rows, exact over every pair: for unit rows |z_i - z_j|^2 is
    2 - 2 z_i.z_j, so each block of rows takes its products with itself and the rows after it (each pair once), in
    float32 products and row sums, the rows summed in float64, within neighbours.BLOCK_BYTES."""
    n = z.shape[0]
    t = torch.as_tensor(z, dtype=torch.float32, device=device)
    step = block_rows(n)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        terms = t[lo:hi] @ t[lo:].T  # this block against itself and every later row, turned into its terms in place
        terms.sub_(1).mul_(2 * UNIFORMITY_T).exp_()
        terms[:, : hi - lo].triu_(diagonal=1)  # within the block, each pair once and no row with itself
        total += terms.sum(dim=1).sum(dtype=torch.float64)  # rows in float32 (a float64 cast would copy the block)
        del terms  # before the next block's products are allocated
    return float(torch.log(2 * total / (n * (n - 1))))


def mutual_share(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row, the share of its neighbours in `first` (n, k) that are also among its neighbours in `second`."""
    return (first[:, :, None] == second[:, None, :]).any(axis=2).mean(axis=1)


def hubness(neighbours: np.ndarray) -> float:
    """The skewness (biased) of how often each row is among the others' neighbours (its k-occurrence)."""
    counts = np.bincount(neighbours.ravel(), minlength=neighbours.shape[0])
    return float(scipy.stats.skew(counts))


def consistency(values: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per row, the standard deviation of `values` over its neighbours divided by their standard deviation over
    all rows (both without Bessel's correction)."""
    return values[neighbours].std(axis=1) / values.std()


def _row(modality: str, metric: str, value: float, n: int, label: str = "",
         per_galaxy: np.ndarray | None = None, draws: int = bootstrap.DRAWS) -> dict:
    lo, hi = bootstrap.bounds(bootstrap.mean, (per_galaxy,), draws) if per_galaxy is not None else (np.nan, np.nan)
    return {"modality": modality, "metric": metric, "label": label, "n": n, "value": value, "value_lo": lo,
            "value_hi": hi}


def measure(embeddings: Mapping[str, np.ndarray], valid: np.ndarray, labels: Mapping[str, np.ndarray],
            neighbours: int, what: str, draws: int = bootstrap.DRAWS,
            device: torch.device | str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every measure of one model's space on its valid rows (`labels`: name -> values of every validation row, NaN
    where missing): the table (COLUMNS) and the singular-value spectra (SPECTRUM_COLUMNS). `what` names the
    embeddings in a refusal; fewer than neighbours + 1 valid rows, or a modality with one point, is refused."""
    n = len(valid)
    if n < neighbours + 1:
        raise UserError(f"{what}: {n} valid rows, but representation.neighbours = {neighbours} needs at least "
                        f"{neighbours + 1}")
    z = {m: unit(embeddings[m][valid], f"{what}: {m} embeddings") for m in MODALITIES}
    for m in MODALITIES:
        if np.ptp(z[m], axis=0).max() == 0:
            raise UserError(f"{what}: the {m} embeddings are one point on every valid row: no space to measure")
    spectra, values = spectrum_table(z)
    knn = {m: top_k(z[m], z[m], neighbours, exclude_diagonal=True, device=device)[0] for m in MODALITIES}
    rows = []
    for m in MODALITIES:
        s = values[m]
        rows += [_row(m, "rankme", rankme(s), n),
                 *[_row(m, f"directions_{round(100 * share)}", directions(s, share), n) for share in SHARES],
                 _row(m, "uniformity", uniformity(z[m], device), n),
                 _row(m, f"hubness{neighbours}", hubness(knn[m]), n)]
    gaps = np.sum((z["image"] - z["spectrum"]) ** 2, axis=1)
    rows += [_row("both", "alignment", float(gaps.mean()), n, per_galaxy=gaps, draws=draws),
             _row("both", "modality_gap", float(np.linalg.norm(z["image"].mean(axis=0) - z["spectrum"].mean(axis=0))), n)]
    shared = mutual_share(knn["image"], knn["spectrum"])
    rows.append(_row("both", f"mutual_knn{neighbours}", float(shared.mean()), n, per_galaxy=shared, draws=draws))
    searches: dict[str, dict[str, np.ndarray]] = {hashlib.sha256(np.arange(n).tobytes()).hexdigest(): knn}
    for name, values_all in labels.items():
        kept = np.flatnonzero(np.isfinite(values_all[valid]))  # positions among the valid rows
        y = values_all[valid][kept]
        if len(kept) < neighbours + 1 or y.std() == 0:
            continue  # too few galaxies, or one value: nothing to be consistent about (the table has no row)
        key = hashlib.sha256(kept.tobytes()).hexdigest()
        if key not in searches:  # labels on the same rows share their searches
            searches[key] = {m: top_k(z[m][kept], z[m][kept], neighbours, exclude_diagonal=True, device=device)[0]
                             for m in MODALITIES}
        for m in MODALITIES:
            ratio = consistency(y, searches[key][m])
            rows.append(_row(m, "property_consistency", float(ratio.mean()), len(kept), name, ratio, draws))
    return pd.DataFrame(rows, columns=COLUMNS), spectra


# Figures


def spectrum_figure(spectra: pd.DataFrame, title: str = "") -> plt.Figure:
    """The singular values (normalised to the largest) against their rank, log scale, one line per model (when the
    table has a `model` column) and modality."""
    use_style()
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    models = list(dict.fromkeys(spectra["model"])) if "model" in spectra else [None]
    for c, model in enumerate(models):
        for modality, style in LINES.items():
            rows = spectra[(spectra["modality"] == modality) & ((spectra["model"] == model) if model else True)]
            s = rows["singular_value"].to_numpy()
            ax.plot(rows["direction"], s / s.max(), style, color=f"C{c if model else list(LINES).index(modality)}",
                    label=f"{model}, {modality}" if model else modality)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("direction (singular values, largest first)")
    ax.set_ylabel("singular value / largest")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "Singular-value spectra of the embeddings (valid rows, unit length)")
    return fig


def space_vs_dim(table: pd.DataFrame) -> plt.Figure:
    """Across models: rankme and the directions holding 99% against the embedding dimension (the dimension itself
    as the ceiling), and the alignment-uniformity plane, one point per model and modality (lower-left is better)."""
    use_style()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    dims = np.sort(table["embedding_dim"].unique())
    for ax, metric, name in ((axes[0], "rankme", "RankMe (effective rank)"),
                             (axes[1], "directions_99", "directions holding 99%")):
        for modality, marker in MARKERS.items():
            rows = table[(table["metric"] == metric) & (table["modality"] == modality)].sort_values("embedding_dim")
            ax.plot(rows["embedding_dim"], rows["value"], f"{marker}-", label=modality)
        ax.plot(dims, dims, ":", color="tab:grey", label="the dimension")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    plane = axes[2]
    align = table[table["metric"] == "alignment"].set_index("model")["value"]
    for c, model in enumerate(dict.fromkeys(table["model"])):
        for modality, marker in MARKERS.items():
            u = table[(table["model"] == model) & (table["metric"] == "uniformity") & (table["modality"] == modality)]
            if model in align and len(u):
                plane.plot(align[model], u["value"].iloc[0], marker, color=f"C{c}", label=f"{model}, {modality}")
    plane.set_xlabel("alignment, mean |z_image - z_spectrum|^2 (lower: pairs closer)")
    plane.set_ylabel("uniformity (lower: spread more evenly)")
    plane.grid(alpha=0.3)
    plane.legend(fontsize=7)
    fig.suptitle("The embedding space against its dimension, and the alignment-uniformity plane")
    return fig

