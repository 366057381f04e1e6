"""Similarity search by cosine similarity over valid (or all) validation rows, in-modal and cross-modal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import SIMILARITY_MODES
from astroclip_eval.tasks.neighbours import top_k

ROWS = ("valid", "all")


def candidate_rows(valid: np.ndarray, n_rows: int, rows: str) -> np.ndarray:
    """The rows a search may return: the valid ones, or every validation row (as the reproduction's notebook)."""
    if rows not in ROWS:
        raise UserError(f"similarity.rows: '{rows}' is not one of {list(ROWS)}")
    return np.asarray(valid, dtype=np.int64) if rows == "valid" else np.arange(n_rows)


def check_queries(query_indices: list[int], candidates: np.ndarray, n_rows: int) -> None:
    candidate_set = set(candidates.tolist())
    for q in query_indices:
        if not 0 <= q < n_rows:
            raise UserError(f"similarity.query_indices: {q} is outside the validation set of {n_rows} rows")
        if q not in candidate_set:
            raise UserError(
                f"similarity.query_indices: row {q} is not a valid row (bad spectrum or redshift out of range); "
                "with similarity.rows: all every row may be queried"
            )


def search(
    embeddings: dict[str, np.ndarray],
    valid: np.ndarray,
    query_indices: list[int],
    k: int,
    exclude_self: bool = True,
    rows: str = "valid",
) -> pd.DataFrame:
    """Top-k matches per query and mode; columns query, mode, rank (1 = best), index (validation row), cosine.

    `rows` picks the candidates: valid rows, or all rows as the reproduction's notebook. With `exclude_self`
    in-modal modes leave the query out of its own results; without it the query is its own first match, as in the
    reproduction's notebook. Cross-modal modes always keep it, since finding a galaxy's own image from its
    spectrum is the point.
    """
    n_rows = next(iter(embeddings.values())).shape[0]
    candidates = candidate_rows(valid, n_rows, rows)
    check_queries(query_indices, candidates, n_rows)
    if k + int(exclude_self) > candidates.size:
        raise UserError(f"similarity.top_k: {k} matches per query" + (" (and the query itself, left out)" if exclude_self else "")
                        + f" asked of {candidates.size} candidate rows (similarity.rows: {rows})")
    position = {int(v): i for i, v in enumerate(candidates)}
    out = []
    for mode, (qm, tm) in SIMILARITY_MODES.items():
        target = embeddings[tm][candidates]
        queries = embeddings[qm][query_indices]
        extra = int(qm == tm and exclude_self)
        idx, cos = top_k(queries, target, k + extra)
        for qi, q in enumerate(query_indices):
            hits = [(candidates[j], c) for j, c in zip(idx[qi], cos[qi]) if not (extra and j == position[q])][:k]
            out += [
                {"query": q, "mode": mode, "rank": r + 1, "index": int(i), "cosine": float(c)} for r, (i, c) in enumerate(hits)
            ]
    return pd.DataFrame(out, columns=["query", "mode", "rank", "index", "cosine"])
