"""Similarity search by cosine similarity over valid rows, in-modal and cross-modal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import UserError
from .neighbours import top_k

# mode -> (query modality, target modality)
MODES = {"sp-sp": ("spectrum", "spectrum"), "im-im": ("image", "image"), "sp-im": ("spectrum", "image"), "im-sp": ("image", "spectrum")}


def check_queries(query_indices: list[int], valid: np.ndarray, n_rows: int) -> None:
    valid_set = set(valid.tolist())
    for q in query_indices:
        if not 0 <= q < n_rows:
            raise UserError(f"similarity.query_indices: {q} is outside the validation set of {n_rows} rows")
        if q not in valid_set:
            raise UserError(f"similarity.query_indices: row {q} is not a valid row (bad spectrum or redshift out of range)")


def search(
    embeddings: dict[str, np.ndarray], valid: np.ndarray, query_indices: list[int], k: int
) -> pd.DataFrame:
    """Top-k matches per query and mode; columns query, mode, rank (1 = best), index (validation row), cosine.

    In-modal modes leave the query out of its own results; cross-modal modes keep it, since finding a
    galaxy's own image from its spectrum is the point.
    """
    check_queries(query_indices, valid, next(iter(embeddings.values())).shape[0])
    position = {int(v): i for i, v in enumerate(valid)}
    rows = []
    for mode, (qm, tm) in MODES.items():
        target = embeddings[tm][valid]
        queries = embeddings[qm][query_indices]
        extra = int(qm == tm)
        idx, cos = top_k(queries, target, k + extra)
        for qi, q in enumerate(query_indices):
            hits = [(valid[j], c) for j, c in zip(idx[qi], cos[qi]) if not (extra and j == position[q])][:k]
            rows += [
                {"query": q, "mode": mode, "rank": r + 1, "index": int(i), "cosine": float(c)} for r, (i, c) in enumerate(hits)
            ]
    return pd.DataFrame(rows, columns=["query", "mode", "rank", "index", "cosine"])
