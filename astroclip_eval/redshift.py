"""Zero-shot kNN redshift: the mean redshift of a query's k nearest neighbours, over valid rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import UserError
from .neighbours import top_k

MODALITIES = ("spectrum", "image")


def knn_redshift(
    query: np.ndarray, target: np.ndarray, z_target: np.ndarray, k: int, exclude_self: bool
) -> np.ndarray:
    """Predicted redshift per query row. With `exclude_self`, query row i is not its own neighbour (in-modal)."""
    idx, _ = top_k(query, target, k, exclude_diagonal=exclude_self)
    return z_target[idx].mean(axis=1)


def r2_score(truth: np.ndarray, pred: np.ndarray) -> float:
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2))


def evaluate(
    embeddings: dict[str, np.ndarray], redshifts: np.ndarray, valid: np.ndarray, k: int, exclude_self: bool
) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """R^2 for spectrum/image queries against spectrum/image neighbours (four rows), and the predictions.

    `embeddings` maps modality -> (N, D) over all rows; `valid` selects the rows used as queries and targets.
    Self-exclusion applies only in-modal: cross-modally a galaxy's other half is a legitimate neighbour.
    """
    if valid.size == 0:
        raise UserError("valid_indices: no valid rows (every spectrum is empty or non-finite, or every redshift is out of range)")
    if k < 1 or k > valid.size - 1:
        raise UserError(f"redshift.n_neighbours: {k} needs at least k + 1 = {k + 1} valid rows, there are {valid.size}")
    z = redshifts[valid]
    rows, predictions = [], {}
    for query in MODALITIES:
        for target in MODALITIES:
            pred = knn_redshift(
                embeddings[query][valid], embeddings[target][valid], z, k, exclude_self and query == target
            )
            predictions[(query, target)] = pred
            rows.append({"query": query, "target": target, "r2": r2_score(z, pred)})
    return pd.DataFrame(rows, columns=["query", "target", "r2"]), predictions
