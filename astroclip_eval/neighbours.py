"""Blocked top-k by cosine similarity over L2-normalised embeddings (equivalently, Euclidean kNN)."""

from __future__ import annotations

import numpy as np
import torch


def top_k(
    query: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    k: int,
    exclude_diagonal: bool = False,
    block_rows: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (q, k) and cosines (q, k) of the k most similar target rows for each query row, best first.

    Rows are normalised here, so the result is independent of their scale. `exclude_diagonal` drops target
    row i for query row i (query and target are the same rows, e.g. in-modal leave-one-out).
    """
    q = torch.nn.functional.normalize(torch.as_tensor(query, dtype=torch.float32), dim=1)
    t = torch.nn.functional.normalize(torch.as_tensor(target, dtype=torch.float32), dim=1)
    if k > t.shape[0] - int(exclude_diagonal):
        raise ValueError(f"k={k} neighbours requested from {t.shape[0]} rows")
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    cos_out = np.empty((q.shape[0], k), dtype=np.float32)
    for lo in range(0, q.shape[0], block_rows):
        hi = min(lo + block_rows, q.shape[0])
        sims = q[lo:hi] @ t.T
        if exclude_diagonal:
            rows = torch.arange(hi - lo)
            sims[rows, rows + lo] = -torch.inf
        values, indices = torch.topk(sims, k, dim=1)
        idx_out[lo:hi], cos_out[lo:hi] = indices.numpy(), values.numpy()
    return idx_out, cos_out
