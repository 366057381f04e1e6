"""Redshift as one label of the downstream core: the four query/target pairs per protocol, R^2 and the numbers
photometric-redshift work judges by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import Protocols
from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.downstream import evaluate as evaluate_label

R2_COLUMNS = ["protocol", "query", "target", "r2", "r2_lo", "r2_hi"]
METRICS = ("bias", "sigma_nmad", "sigma68", "outlier_fraction")
METRIC_COLUMNS = ["protocol", "query", "target", *[f"{m}{end}" for m in METRICS for end in ("", "_lo", "_hi")]]


def redshift_metrics(truth: np.ndarray, pred: np.ndarray, draws: int = 0) -> dict[str, float]:
    """Bias (median of dz/(1+z)), sigma_NMAD (1.4826 x the median absolute deviation of dz/(1+z) about its median),
    sigma68 ((p84 - p16)/2 of dz/(1+z)) and the outlier fraction (|dz|/(1+z) > 0.15); with `draws`, each one's 95%
    bootstrap interval over the rows."""
    dz = (np.asarray(pred, np.float64) - truth) / (1 + np.asarray(truth, np.float64))
    bias = float(np.median(dz))
    p16, p84 = np.percentile(dz, [16, 84])
    out = {
        "bias": bias,
        "sigma_nmad": float(1.4826 * np.median(np.abs(dz - bias))),
        "sigma68": float((p84 - p16) / 2),
        "outlier_fraction": float(np.mean(np.abs(dz) > 0.15)),
    }
    if draws:
        bootstrap.add_bounds(out, {name: getattr(bootstrap, name) for name in METRICS}, (truth, pred), draws)
    return out


def evaluate(
    embeddings: dict[str, np.ndarray],
    redshifts: np.ndarray,
    valid: np.ndarray,
    protocols: Protocols,
    train: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None = None,
    device: torch.device | str = "cpu",
    draws: int = bootstrap.DRAWS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str, str], np.ndarray]]:
    """The R^2 table, the bias/scatter/outlier table (each score with its 95% bootstrap interval over `draws`
    resamples of the rows) and the predictions per (protocol, query, target).

    `embeddings` maps modality -> (N, D) over all rows of the validation split and `valid` picks the rows that take
    part; `train` is the train split's (embeddings, redshifts, valid rows) for the protocols fitted on it.
    Self-exclusion applies only in-modal: cross-modally a galaxy's other half is a legitimate neighbour."""
    if valid.size == 0:
        raise UserError("valid_indices: no valid rows (every spectrum is empty or non-finite, or every redshift is out of range)")
    train_emb, train_z, train_valid = train if train is not None else (None, None, None)
    rows, predictions, truth = evaluate_label(
        "redshift", embeddings, np.asarray(redshifts, np.float64), valid, train_emb,
        None if train_z is None else np.asarray(train_z, np.float64), train_valid, protocols, device=device, draws=draws,
        standardise_targets=protocols.few_shot_recipe == "paper",  # the paper standardises the redshift too
    )
    r2 = pd.DataFrame(rows, columns=R2_COLUMNS)
    metrics = pd.DataFrame(
        [{"protocol": p, "query": q, "target": t, **redshift_metrics(truth, pred, draws)}
         for (p, q, t), pred in predictions.items()],
        columns=METRIC_COLUMNS,
    )
    return r2, metrics, predictions
