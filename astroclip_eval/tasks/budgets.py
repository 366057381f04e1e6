"""Label budgets: how each protocol's score grows with the share of the train split's labels it is given.

The claim newer galaxy foundation models make is label efficiency, read from curves of score against the fraction
of labels used. For each label and modality (in-modal: the query's embedding against train rows of the same
modality), each protocol is fitted on seeded subsets of the labelled train rows and scored (R^2) on the valid
validation rows with the label:

- zero_shot: the distance-weighted kNN on standardised embeddings (k capped at the subset's size);
- few_shot: the MLP of `protocols.few_shot_recipe` (a seed per repeat);
- linear: ridge regression on the standardised embeddings, its penalty chosen by K-fold cross-validation on the
  subset (mean held-out R^2 over contiguous folds, the first best on ties, refitted on the whole subset), as
  scikit-learn's RidgeCV(cv=KFold(K)) chooses it.

Each repeat draws one permutation of the labelled train rows; a fraction takes its first ceil(fraction x n) rows,
so a repeat's subsets are nested and the repeats differ. At the whole split every repeat has the same rows: the
kNN and the ridge give one number there, the MLP's spread is its seeds'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import Protocols, base_protocol, protocol_runs
from astroclip_eval.style import use_style
from astroclip_eval.tasks.downstream import MODALITIES, Labelled, fitted, r2_score, require_variance
from astroclip_eval.tasks.protocols import standardiser

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
PROTOCOLS = ("zero_shot", "few_shot", "linear")
ALPHAS = tuple(10.0 ** np.arange(-3, 5.5, 0.5))  # ridge penalties tried, on standardised embeddings
FOLDS = 5
MIN_ROWS = 2 * FOLDS  # a subset has at least this many rows (the folds need two each)
COLUMNS = ["label", "modality", "protocol", "fraction", "n_train", "repeats", "r2_mean", "r2_std", "r2_min", "r2_max"]


def subsets(n: int, fractions: tuple[float, ...] | list[float], repeats: int, seed: int = 0) -> list[list[np.ndarray]]:
    """Per repeat, per fraction, the positions (sorted) among n labelled train rows that the fit may use."""
    out = []
    for repeat in range(repeats):
        order = np.random.default_rng([seed, repeat]).permutation(n)
        sizes = [min(n, max(MIN_ROWS, math.ceil(f * n))) for f in fractions]
        out.append([np.sort(order[:size]) for size in sizes])
    return out


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge coefficients (alphas, d) and intercepts (alphas,) with an unpenalised intercept, for every penalty
    from one eigendecomposition of the centred Gram matrix."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    values, vectors = np.linalg.eigh(xc.T @ xc)
    projected = vectors.T @ (xc.T @ (y - y_mean))
    coefs = np.stack([vectors @ (projected / (values + a)) for a in alphas])
    return coefs, y_mean - coefs @ x_mean


def ridge_cv(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...] = ALPHAS, folds: int = FOLDS
             ) -> tuple[float, np.ndarray, float]:
    """(alpha, coefficients, intercept): the penalty with the best mean held-out R^2 over `folds` contiguous folds
    (the first on ties), refitted on every row."""
    n = len(y)
    if n < 2 * folds:
        raise UserError(f"budgets: {n} train rows, fewer than {2 * folds} for {folds}-fold cross-validation")
    sizes = np.full(folds, n // folds) + (np.arange(folds) < n % folds)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    scores = np.zeros(len(alphas))
    for lo, hi in zip(bounds, bounds[1:]):
        held = np.zeros(n, bool)
        held[lo:hi] = True
        coefs, intercepts = ridge_path(x[~held], y[~held], alphas)
        pred = x[held] @ coefs.T + intercepts
        truth = y[held][:, None]
        scores += 1 - ((truth - pred) ** 2).sum(axis=0) / ((truth - truth.mean()) ** 2).sum()
    best = int(np.argmax(scores / folds))
    coefs, intercepts = ridge_path(x, y, [alphas[best]])
    return float(alphas[best]), coefs[0], float(intercepts[0])


@dataclass(frozen=True)
class Budget:
    """The config's `budgets` section as the step reads it (its `labels` choose the step's inputs, in the rule)."""

    fractions: tuple[float, ...]  # increasing
    repeats: int
    protocols: tuple[str, ...]
    seed: int  # of the subsets; repeat r's MLP is seeded seed + r

    @classmethod
    def of(cls, section: dict[str, Any]) -> Budget:
        """From the validated section (or its JSON in a plan)."""
        return cls(tuple(sorted(section["fractions"])), int(section["repeats"]), tuple(section["protocols"]),
                   int(section["seed"]))


def _predict(protocol: str, k: int | None, train: Labelled, valid: Labelled, protocols: Protocols, seed: int,
             label: str, device: torch.device | str) -> np.ndarray:
    """One protocol fitted on one subset of one modality and applied to the validation rows: zero_shot and few_shot
    as every label is fitted (`downstream.fitted`: embeddings and targets standardised with the subset; k capped at
    its size, the MLP seeded `seed`), linear (ridge) on the same standardised embeddings and targets."""
    ((modality, x_train),) = train.embeddings.items()
    if protocol != "linear":
        settings = replace(protocols, zero_shot_neighbours=min(k or 1, train.labels.size), few_shot_seed=seed)
        return fitted(protocol, train, valid, settings, 0, label, device=device)[(protocol, modality, modality)]
    mean, std = standardiser(x_train)
    scale = (train.labels.mean(), train.labels.std() or 1.0)
    _, coef, intercept = ridge_cv((x_train - mean) / std, (train.labels - scale[0]) / scale[1])
    return (((valid.embeddings[modality] - mean) / std) @ coef + intercept) * scale[1] + scale[0]


def evaluate(label: str, valid_emb: dict[str, np.ndarray], valid_labels: np.ndarray, valid_rows: np.ndarray,
             train_emb: dict[str, np.ndarray], train_labels: np.ndarray, train_rows: np.ndarray, budget: Budget,
             protocols: Protocols, device: torch.device | str = "cpu") -> pd.DataFrame:
    """One label's budget table: per modality, protocol and fraction, the R^2 over the repeats (mean, spread as the
    standard deviation, min, max) and the subset's size; zero_shot at each k of `protocols.zero_shot_neighbours` (a
    list: a protocol column per k, 'zero_shot@16') and few_shot by `protocols.few_shot_recipe`."""
    unknown = [p for p in budget.protocols if p not in PROTOCOLS]
    if unknown:
        raise UserError(f"budgets.protocols: unknown protocol {unknown[0]!r} (expected one of {', '.join(PROTOCOLS)})")
    valid = Labelled.select(valid_emb, valid_labels.astype(np.float64), valid_rows, codes=False)
    train = Labelled.select(train_emb, train_labels.astype(np.float64), train_rows, codes=False)
    if valid.labels.size < 2 or train.labels.size < MIN_ROWS:
        raise UserError(f"budgets.labels: {label} has {train.labels.size} labelled train rows and {valid.labels.size} "
                        f"validation rows; at least {MIN_ROWS} and 2 are needed")
    require_variance(f"budgets.labels: {label}", valid.labels)  # R^2 divides by it
    drawn = subsets(train.labels.size, budget.fractions, budget.repeats, budget.seed)
    runs = [run for p in budget.protocols for run in protocol_runs(p, protocols.neighbours(p))]
    rows = []
    for modality in MODALITIES:
        one = Labelled({modality: valid.embeddings[modality]}, valid.labels, valid.rows)
        for protocol, kk in runs:
            for j, fraction in enumerate(budget.fractions):
                scores, seen = [], {}
                for repeat in range(budget.repeats):
                    picked = drawn[repeat][j]
                    key = picked.tobytes()  # the kNN and the ridge give the same fit on the same rows
                    if base_protocol(protocol) == "few_shot" or key not in seen:  # the MLP's seed differs by repeat
                        subset = Labelled({modality: train.embeddings[modality][picked]}, train.labels[picked],
                                          train.rows[picked])
                        pred = _predict(base_protocol(protocol), kk, subset, one, protocols, budget.seed + repeat,
                                        label, device)
                        seen[key] = r2_score(valid.labels, pred)
                    scores.append(seen[key])
                scores = np.array(scores)
                same = bool(np.all(scores == scores[0]))  # one fit seen by every repeat: its number, no spread
                rows.append({"label": label, "modality": modality, "protocol": protocol, "fraction": fraction,
                             "n_train": int(drawn[0][j].size), "repeats": budget.repeats,
                             "r2_mean": float(scores[0] if same else scores.mean()),
                             "r2_std": 0.0 if same else float(scores.std(ddof=1)),
                             "r2_min": float(scores.min()), "r2_max": float(scores.max())})
    return pd.DataFrame(rows, columns=COLUMNS)


STYLES = {"zero_shot": "o-", "few_shot": "s--", "linear": "^:"}
MARKERS = "ovDP"  # a protocol run at several k: one marker per k, its line style kept


def _style(protocol: str, protocols: list[str]) -> str:
    """A protocol's line style; each k of a protocol run at several its own marker."""
    base = base_protocol(protocol)
    siblings = [p for p in protocols if base_protocol(p) == base]
    style = STYLES[base]
    return style if len(siblings) < 2 else MARKERS[siblings.index(protocol) % len(MARKERS)] + style[1:]


def budget_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """R^2 against the fraction of train labels, one panel per label and modality, one line per protocol and
    model (when the table has a `model` column), the repeats' min-max as a band."""
    use_style()
    labels = list(dict.fromkeys(table["label"]))
    fig, axes = plt.subplots(len(labels), 2, figsize=(9, 3.2 * len(labels)), sharex=True, squeeze=False,
                             constrained_layout=True)
    models = list(dict.fromkeys(table["model"])) if "model" in table else [None]
    protocols = list(dict.fromkeys(table["protocol"]))
    for i, label in enumerate(labels):
        for j, modality in enumerate(MODALITIES):
            ax = axes[i, j]
            for c, model in enumerate(models):
                for p, protocol in enumerate(protocols):
                    style = _style(protocol, protocols)
                    rows = table[(table["label"] == label) & (table["modality"] == modality)
                                 & (table["protocol"] == protocol) & ((table["model"] == model) if model else True)]
                    if rows.empty:
                        continue
                    rows = rows.sort_values("fraction")
                    name = f"{model}, {protocol}" if model else protocol
                    colour = f"C{c if model else p}"  # a model's, or a protocol's
                    ax.plot(rows["fraction"], rows["r2_mean"], style, color=colour, label=name, ms=4)
                    ax.fill_between(rows["fraction"], rows["r2_min"], rows["r2_max"], alpha=0.15, color=colour)
            ax.set_xscale("log")
            ax.set_title(f"{label}, {modality} embedding", fontsize=9)
            ax.set_xlabel("fraction of the train split's labels")
            ax.set_ylabel("$R^2$ on the validation rows")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
