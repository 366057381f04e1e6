"""The R^2 table across models, with each model's embedding dimension."""

from __future__ import annotations

import pandas as pd


def combine(tables: dict[str, pd.DataFrame], dims: dict[str, int]) -> pd.DataFrame:
    """Stack per-model `query,target,r2` tables into `model,embedding_dim,query,target,r2`, sorted by dimension."""
    frames = [t.assign(model=m, embedding_dim=dims[m]) for m, t in tables.items()]
    out = pd.concat(frames, ignore_index=True)[["model", "embedding_dim", "query", "target", "r2"]]
    return out.sort_values(["embedding_dim", "model", "query", "target"], kind="stable").reset_index(drop=True)
