"""Baselines: a feature set read from a catalogue (a galaxy's g, r, z magnitudes) scored as if it were an embedding
of one modality, `features`, by the protocols fitted on the train split, on the valid rows that have it,
for the redshift and every property and classification. The first question a referee asks of an embedding is
whether it beats the galaxy's colours; the summary sets each model beside it by a paired bootstrap on the galaxies
both scored.

zero_shot on a feature set is scikit-learn's StandardScaler (fitted on the train split) and
KNeighborsRegressor(k, weights="distance"); few_shot is the models' MLP on the same standardised features.
reproduction is not run: its cosine similarity of the raw vectors ignores their length, which for three magnitudes
is the galaxy's brightness (measured: redshift R^2 below zero on simulated magnitudes that carry it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import Protocols
from astroclip_eval.tasks import redshift
from astroclip_eval.tasks.downstream import FEATURES, evaluate_all, label_predictions, prediction_table
from astroclip_eval.tasks.labels import feature_columns


def label(name: str, entry: Mapping[str, Any]) -> str:
    """How the overview names a baseline: its `label`, else its name and columns ("photometry (MAG_G, MAG_R)")."""
    return entry.get("label") or f"{name} ({', '.join(entry['columns'])})"


def features(table: pd.DataFrame, name: str, entry: Mapping[str, Any], rows: np.ndarray,
             where: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The baseline's features over every row of a split (its one modality) and those of `rows` that have them."""
    columns = feature_columns(name, entry)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{where}: no column {missing[0]!r}; the catalogues were joined without baselines.{name} "
                        "(rerun join_catalogues)")
    values = table[columns].to_numpy(np.float64)
    have = rows[np.isfinite(values[rows]).all(axis=1)]
    if have.size == 0:
        raise UserError(f"baselines.{name}: none of the {rows.size:,} valid rows of {where} has all of "
                        f"{', '.join(entry['columns'])}; nothing to score")
    return {FEATURES: values}, have


def score(
    name: str,
    entry: Mapping[str, Any],
    valid: tuple[pd.DataFrame, np.ndarray, np.ndarray],
    train: tuple[pd.DataFrame, np.ndarray, np.ndarray],
    properties: list[str],
    questions: list[str],
    protocols: Protocols,
    vote_fractions: list[str] = (),
    draws: int = 1000,
    where: tuple[str, str] = ("labels.csv", "train_labels.csv"),
) -> dict[str, pd.DataFrame]:
    """The baseline's tables as a model's steps write them (`redshift_r2`, `redshift_metrics`, `properties_r2`,
    `classification`) and its predictions (`redshift_predictions`, `properties_predictions`,
    `classification_predictions`). `valid` and `train` are each split's (label table, redshifts, valid rows);
    A baseline is scored by the `protocols` fitted on the train split (it has no embedding of its own to search)."""
    if not protocols.trained:
        raise UserError(f"baselines.{name}: a baseline is scored by zero_shot or few_shot, fitted on the train split; "
                        f"protocols.run has neither ({', '.join(protocols.run)})")
    protocols = replace(protocols, run=tuple(protocols.trained))
    table, redshifts, rows = valid
    emb, have = features(table, name, entry, rows, where[0])
    train_table, train_z, train_rows = train
    train_emb, train_have = features(train_table, name, entry, train_rows, where[1])
    r2, metrics, z_pred = redshift.evaluate(emb, redshifts, have, protocols, (train_emb, train_z, train_have),
                                            draws=draws)
    prop, cls, prop_pred, class_pred = evaluate_all(
        properties, questions, emb, table, have, train_emb, train_table, train_have, protocols,
        vote_fractions=vote_fractions, draws=draws,
    )
    prop_frame, class_frame = label_predictions(table, have, prop_pred, class_pred)
    return {"redshift_r2": r2, "redshift_metrics": metrics,
            "redshift_predictions": prediction_table("redshift", "redshift", have, table["targetid"].to_numpy(),
                                                     redshifts[have], z_pred),
            "properties_r2": prop, "classification": cls,
            "properties_predictions": prop_frame, "classification_predictions": class_frame}
