"""The R^2 table across models, with each model's embedding dimension."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["model", "embedding_dim", "protocol", "query", "target", "r2"]


def combine(tables: dict[str, pd.DataFrame], dims: dict[str, int]) -> pd.DataFrame:
    """Stack per-model `protocol,query,target,r2` tables into `model,embedding_dim,protocol,query,target,r2`,
    sorted by dimension (each model's rows keep their order)."""
    frames = [t.assign(model=m, embedding_dim=dims[m]) for m, t in tables.items()]
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    return out.sort_values(["embedding_dim", "model"], kind="stable").reset_index(drop=True)
