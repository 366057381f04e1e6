"""Per-model tables stacked across models, with each model's embedding dimension."""

from __future__ import annotations

import pandas as pd


def combine(tables: dict[str, pd.DataFrame], dims: dict[str, int]) -> pd.DataFrame:
    """Stack per-model tables (the same columns) with each model's name and embedding dimension in front, sorted by
    dimension (each model's rows keep their order)."""
    frames = [t.assign(model=m, embedding_dim=dims[m]) for m, t in tables.items()]
    out = pd.concat(frames, ignore_index=True)
    out = out[["model", "embedding_dim", *[c for c in out.columns if c not in ("model", "embedding_dim")]]]
    return out.sort_values(["embedding_dim", "model"], kind="stable").reset_index(drop=True)
