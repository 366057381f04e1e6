"""Cross-modal retrieval, the standard CLIP metric: where does a galaxy's own counterpart rank among all candidates?

For a spectrum query the candidates are the images of the valid rows (and the other way round); the rank of the
query's own image is 1 + the number of candidates more similar than it, so ties count in the query's favour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.neighbours import block_rows, unit_rows

DIRECTIONS = (("spectrum", "image"), ("image", "spectrum"))
SCORES = {"top1": bootstrap.top(1), "top10": bootstrap.top(10), "median_rank": bootstrap.median}
COLUMNS = ["query", "target", "n", *[f"{s}{end}" for s in SCORES for end in ("", "_lo", "_hi")]]


def own_ranks(query: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> np.ndarray:
    """Rank (1 = best) of target row i among all target rows for query row i, by cosine similarity.

    Blocked like `neighbours.top_k` but a quarter of its block (32 MiB of similarities and their comparison), so the
    similarity notebook stays within the memory `make fullsize` bounds at the published 39,599 rows."""
    q, t = unit_rows(query, "query embeddings"), unit_rows(target, "target embeddings")
    if q.shape != t.shape:
        raise ValueError(f"query {tuple(q.shape)} and target {tuple(t.shape)} must be paired row by row")
    ranks = np.empty(q.shape[0], dtype=np.int64)
    step = max(1, block_rows(t.shape[0]) // 4)
    for lo in range(0, q.shape[0], step):
        hi = min(lo + step, q.shape[0])
        sims = q[lo:hi] @ t.T
        own = sims[torch.arange(hi - lo), torch.arange(lo, hi)]
        ranks[lo:hi] = 1 + (sims > own[:, None]).sum(dim=1).numpy()
    return ranks


def retrieval_ranks(embeddings: dict[str, np.ndarray], valid: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """Own-counterpart ranks over the valid rows, per direction (query modality, target modality)."""
    return {(qm, tm): own_ranks(embeddings[qm][valid], embeddings[tm][valid]) for qm, tm in DIRECTIONS}


def retrieval_table(ranks: dict[tuple[str, str], np.ndarray], draws: int = bootstrap.DRAWS) -> pd.DataFrame:
    """Top-1 and top-10 accuracy and the median rank per direction, each with its 95% bootstrap interval over the
    queries (the candidates stay all valid rows)."""
    rows = []
    for (qm, tm), r in ranks.items():
        row = {"query": qm, "target": tm, "n": int(r.size), "top1": float(np.mean(r <= 1)),
               "top10": float(np.mean(r <= 10)), "median_rank": float(np.median(r))}
        bootstrap.add_bounds(row, SCORES, (r,), draws)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
