"""The R^2 and retrieval tables across models, with each model's embedding dimension."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["model", "embedding_dim", "protocol", "query", "target", "r2"]


def combine(tables: dict[str, pd.DataFrame], dims: dict[str, int]) -> pd.DataFrame:
    """Stack per-model `protocol,query,target,r2` tables into `model,embedding_dim,protocol,query,target,r2`,
    sorted by dimension (each model's rows keep their order)."""
    frames = [t.assign(model=m, embedding_dim=dims[m]) for m, t in tables.items()]
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    return out.sort_values(["embedding_dim", "model"], kind="stable").reset_index(drop=True)


def combine_retrieval(tables: dict[str, pd.DataFrame], summary: pd.DataFrame) -> pd.DataFrame:
    """Stack per-model retrieval tables (`retrieval.COLUMNS`) with model and embedding_dim first, in the R^2
    table's model order."""
    dims = summary.drop_duplicates("model").set_index("model")["embedding_dim"]
    frames = [tables[m].assign(model=m, embedding_dim=int(d)) for m, d in dims.items()]
    out = pd.concat(frames, ignore_index=True)
    return out[["model", "embedding_dim", *[c for c in out.columns if c not in ("model", "embedding_dim")]]]
