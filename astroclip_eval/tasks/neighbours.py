"""Neighbour searches: blocked top-k by cosine similarity over L2-normalised embeddings (equivalently, Euclidean
kNN), and the exact Euclidean kNN of the trained protocols, screened in float32 and decided in float64."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from astroclip_eval.io.errors import UserError

# Bytes of similarities (or distances) held at once per block of queries, whatever the target count, so that memory
# stays flat on the published 39,599 rows (a fixed 4,096-row block measured a 1.8 GB peak there).
BLOCK_BYTES = 128 * 2**20


def block_rows(n_target: int, bytes_per_value: int = 4) -> int:
    """Query rows per block so that a block's (rows x n_target) matrix takes at most BLOCK_BYTES."""
    return max(1, BLOCK_BYTES // (max(n_target, 1) * bytes_per_value))


def require_finite(x: np.ndarray | torch.Tensor, what: str, rows: np.ndarray | None = None) -> None:
    """Refuse rows that are not finite, in one line naming `what`, how many and the first few (numbered by `rows`
    when given): a NaN similarity would sort as a match, a NaN prediction would become a score."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(x)).reshape(len(x), -1).all(axis=1))
    if bad.size:
        first = (bad if rows is None else rows[bad])[:5].tolist()
        raise UserError(f"{what}: {bad.size} rows are not finite (first rows {first}); nothing is computed from them")


def unit_rows(x: np.ndarray | torch.Tensor, what: str = "embeddings") -> torch.Tensor:
    """float32 rows scaled to unit length, so dot products are cosine similarities; non-finite rows refused."""
    x = torch.as_tensor(x, dtype=torch.float32)
    require_finite(x, what)
    return torch.nn.functional.normalize(x, dim=1)


def top_k(
    query: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    k: int,
    exclude_diagonal: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (q, k) and cosines (q, k) of the k most similar target rows for each query row, best first.

    Rows are normalised here, so the result is independent of their scale. `exclude_diagonal` drops target
    row i for query row i (query and target are the same rows, e.g. in-modal leave-one-out).
    """
    q = unit_rows(query, "query embeddings").to(device)
    t = unit_rows(target, "target embeddings").to(device)
    if k > t.shape[0] - int(exclude_diagonal):
        raise ValueError(f"k={k} neighbours requested from {t.shape[0]} rows")
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    cos_out = np.empty((q.shape[0], k), dtype=np.float32)
    step = block_rows(t.shape[0])
    products = torch.empty((min(step, q.shape[0]), t.shape[0]), device=device)  # reused: see euclidean_knn
    for lo in range(0, q.shape[0], step):
        hi = min(lo + step, q.shape[0])
        sims = torch.mm(q[lo:hi], t.T, out=products[: hi - lo])
        if exclude_diagonal:
            rows = torch.arange(hi - lo, device=device)
            sims[rows, rows + lo] = -torch.inf
        values, indices = torch.topk(sims, k, dim=1)
        idx_out[lo:hi], cos_out[lo:hi] = indices.cpu().numpy(), values.cpu().numpy()
    return idx_out, cos_out


# Candidates kept per query by the float32 screen beyond the k asked for: enough that the float64 decision rarely
# has to search a row again (none of the demo's 4 x 1,582 queries of either model did, nor the benchmark's 1/8-size
# case), few enough to gather cheaply (the float64 rows gathered cost a tenth of a search).
SCREEN_EXTRA = 8
UNIT_ROUNDOFF = 2.0**-24  # float32
# Query rows whose candidates' float64 rows are gathered at once: 64 x 72 x 128-d is 4.7 MB, in cache for the product
# that follows; the whole block's (125 MB at 1,694 rows) made gathering a fifth of the search (2026-12-07, 2 cores).
GATHER_ROWS = 64


@contextlib.contextmanager
def ieee_float32() -> Iterator[None]:
    """float32 matrix products in full float32 (no TF32 or bf16 inside them) while the screen runs: its error bound
    assumes float32 arithmetic, whatever the caller (Lightning, a user) set for the process."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def screen_bound(query_norms: torch.Tensor, train_norm_max: float, dims: int) -> torch.Tensor:
    """Per query row, a bound on |screened - exact| of ||t||^2 - 2 q.t for every train row t: float32 rounding of
    q and t (2u|q||t|), the dot product summed in any order (gamma_d |q||t|), ||t||^2 and the final subtraction
    rounded once each (u ||t||^2, u(||t||^2 + 2|q||t|)); all under 2 (gamma_{d+2} + 3u) (|q| + max|t|)^2, doubled
    again for margin."""
    gamma = (dims + 2) * UNIT_ROUNDOFF / (1 - (dims + 2) * UNIT_ROUNDOFF)
    return 4 * (gamma + 3 * UNIT_ROUNDOFF) * (query_norms + train_norm_max) ** 2


def euclidean_knn(
    train: np.ndarray, query: np.ndarray, k: int, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (q, k) and indices (q, k) of the k nearest train rows per query row, nearest first, equal
    to a float64 brute-force search (scikit-learn's): what the zero-shot protocol's weights need.

    Each block of queries is screened by one float32 matrix product against every train row (the float64 search
    costs 1.5-2x more on a CPU, and far more on a GPU) keeping the k + SCREEN_EXTRA best; their distances are
    computed again in float64 and sorted there (ties by train index). The screen's error is bounded
    (`screen_bound`): where the k-th float64 distance is not clear of the worst candidate left out by more than the
    bound, the row is searched again wholly in float64, so the result never depends on float32 rounding."""
    device = torch.device(device)
    t64 = torch.as_tensor(np.asarray(train, dtype=np.float64), device=device)
    n_train, dims = t64.shape
    keep = min(n_train, k + SCREEN_EXTRA)
    norms64 = (t64 * t64).sum(dim=1)
    norm_max = float(norms64.max().sqrt()) if n_train else 0.0
    screen = torch.cat([-2 * t64, norms64[:, None]], dim=1).float()  # [q, 1] . [-2t, ||t||^2]: one product, no pass
    dist_out = np.empty((query.shape[0], k), dtype=np.float64)
    idx_out = np.empty((query.shape[0], k), dtype=np.int64)
    again: list[np.ndarray] = []
    step = block_rows(n_train)
    # one buffer for every block's products and one for its candidates' rows: fresh ones of this size cost a page
    # fault per 4 KiB on each block, as much as the product itself on a CPU
    products = torch.empty((min(step, query.shape[0]), n_train), dtype=torch.float32, device=device)
    gathered = torch.empty((min(GATHER_ROWS, query.shape[0]) * keep, dims), dtype=torch.float64, device=device)
    with ieee_float32():
        for lo in range(0, query.shape[0], step):
            q64 = torch.as_tensor(np.asarray(query[lo : lo + step], dtype=np.float64), device=device)
            b = q64.shape[0]
            ones = torch.ones((b, 1), dtype=torch.float64, device=device)
            screened = torch.mm(torch.cat([q64, ones], dim=1).float(), screen.T, out=products[:b])  # ||q-t||^2 - ||q||^2
            worst, candidates = torch.topk(screened, keep, dim=1, largest=False, sorted=False)
            candidates = candidates.sort(dim=1).values  # ties in float64 then go to the lower train index
            q_norms = (q64 * q64).sum(dim=1)
            dots = torch.empty((b, keep), dtype=torch.float64, device=device)
            for sub in range(0, b, GATHER_ROWS):  # the candidates' float64 rows a few MB at a time, read from cache
                part = candidates[sub : sub + GATHER_ROWS]
                rows = torch.index_select(t64, 0, part.flatten(), out=gathered[: part.numel()]).view(*part.shape, dims)
                torch.bmm(rows, q64[sub : sub + GATHER_ROWS, :, None], out=dots[sub : sub + GATHER_ROWS, :, None])
            exact = q_norms[:, None] + norms64[candidates] - 2 * dots
            exact, order = exact.clamp_min(0).sort(dim=1, stable=True)
            if keep < n_train:
                clear = exact[:, k - 1] - q_norms < worst.max(dim=1).values - screen_bound(q_norms.sqrt(), norm_max, dims)
                again.append(lo + torch.nonzero(~clear).flatten().cpu().numpy())
            dist_out[lo : lo + step] = exact[:, :k].sqrt().cpu().numpy()
            idx_out[lo : lo + step] = torch.gather(candidates, 1, order[:, :k]).cpu().numpy()
    rows = np.concatenate(again) if again else np.empty(0, dtype=np.int64)
    if rows.size:
        dist_out[rows], idx_out[rows] = float64_knn(t64, query[rows], k, device)
    return dist_out, idx_out


def float64_knn(
    t64: torch.Tensor, query: np.ndarray, k: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """The plain float64 search, for the rows the screen could not decide: blocks of queries, every distance."""
    dist_out = np.empty((query.shape[0], k), dtype=np.float64)
    idx_out = np.empty((query.shape[0], k), dtype=np.int64)
    step = block_rows(t64.shape[0], bytes_per_value=8)
    for lo in range(0, query.shape[0], step):
        q = torch.as_tensor(np.asarray(query[lo : lo + step], dtype=np.float64), device=device)
        d2 = torch.cdist(q, t64, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        index = torch.arange(t64.shape[0], device=device).expand_as(d2)
        d2, order = torch.sort(d2, dim=1, stable=True)
        dist_out[lo : lo + step] = d2[:, :k].sqrt().cpu().numpy()
        idx_out[lo : lo + step] = torch.gather(index, 1, order[:, :k]).cpu().numpy()
    return dist_out, idx_out
