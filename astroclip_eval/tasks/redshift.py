"""Redshift as one label of the downstream core: the four query/target pairs per protocol, R^2 and the numbers
photometric-redshift work judges by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks.downstream import evaluate as evaluate_label

R2_COLUMNS = ["protocol", "query", "target", "r2"]
METRIC_COLUMNS = ["protocol", "query", "target", "bias", "sigma_nmad", "outlier_fraction"]


def redshift_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Bias (median of dz/(1+z)), sigma_NMAD (1.4826 x the median absolute deviation of dz/(1+z) about its median)
    and the outlier fraction (|dz|/(1+z) > 0.15)."""
    dz = (np.asarray(pred, np.float64) - truth) / (1 + np.asarray(truth, np.float64))
    bias = float(np.median(dz))
    return {
        "bias": bias,
        "sigma_nmad": float(1.4826 * np.median(np.abs(dz - bias))),
        "outlier_fraction": float(np.mean(np.abs(dz) > 0.15)),
    }


def evaluate(
    embeddings: dict[str, np.ndarray],
    redshifts: np.ndarray,
    valid: np.ndarray,
    k: int,
    exclude_self: bool,
    protocols: list[str] = ("reproduction",),
    train: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None = None,
    zero_shot_k: int = 64,
    seed: int = 0,
    recipe: str = "project",
    device: torch.device | str = "cpu",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str, str], np.ndarray]]:
    """The R^2 table, the bias/scatter/outlier table and the predictions per (protocol, query, target).

    `embeddings` maps modality -> (N, D) over all rows of the validation split and `valid` picks the rows that take
    part; `train` is the train split's (embeddings, redshifts, valid rows) for the protocols fitted on it.
    Self-exclusion applies only in-modal: cross-modally a galaxy's other half is a legitimate neighbour."""
    if valid.size == 0:
        raise UserError("valid_indices: no valid rows (every spectrum is empty or non-finite, or every redshift is out of range)")
    train_emb, train_z, train_valid = train if train is not None else (None, None, None)
    rows, predictions, truth = evaluate_label(
        "redshift", embeddings, np.asarray(redshifts, np.float64), valid, train_emb,
        None if train_z is None else np.asarray(train_z, np.float64), train_valid, list(protocols),
        k=k, exclude_self=exclude_self, zero_shot_k=zero_shot_k, seed=seed, recipe=recipe, device=device,
        standardise_targets=recipe == "paper",  # the paper standardises the redshift too
    )
    r2 = pd.DataFrame(rows, columns=R2_COLUMNS)
    metrics = pd.DataFrame(
        [{"protocol": p, "query": q, "target": t, **redshift_metrics(truth, pred)} for (p, q, t), pred in predictions.items()],
        columns=METRIC_COLUMNS,
    )
    return r2, metrics, predictions
