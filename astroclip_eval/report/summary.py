"""The R^2 and retrieval tables across models, with each model's embedding dimension."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["model", "embedding_dim", "protocol", "query", "target", "r2"]


def combine(tables: dict[str, pd.DataFrame], dims: dict[str, int], columns: list[str] = COLUMNS) -> pd.DataFrame:
    """Stack per-model tables with each model's name and embedding dimension into `columns` (the R^2 table's by
    default), sorted by dimension (each model's rows keep their order)."""
    frames = [t.assign(model=m, embedding_dim=dims[m]) for m, t in tables.items()]
    out = pd.concat(frames, ignore_index=True)[columns]
    return out.sort_values(["embedding_dim", "model"], kind="stable").reset_index(drop=True)
