"""The building blocks of the AstroCLIP paper's protocols, which `downstream` applies to every label.

- zero_shot: distance-weighted kNN (k = 64 in the paper) on embeddings standardised with the train split;
- few_shot: a small MLP (two hidden layers of 64) trained on the same standardised embeddings (CPU, seeded).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks.neighbours import block_rows


def standardiser(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the training embeddings (a constant dimension gets std 1), in
    float64 as scikit-learn's StandardScaler: float32 statistics move near-ties enough to swap neighbours."""
    train = np.asarray(train, dtype=np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def nearest(train: np.ndarray, query: np.ndarray, k: int, key: str = "redshift.zero_shot_neighbours"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (q, k) and indices (q, k) of the k nearest training rows per query row, in blocks of
    queries (float64). Kept apart from the averaging so several labels on the same rows share one search."""
    if k > train.shape[0]:
        raise UserError(f"{key}: {k} neighbours requested from {train.shape[0]} valid training rows")
    t = torch.as_tensor(train, dtype=torch.float64)
    dist_out = np.empty((query.shape[0], k), dtype=np.float64)
    idx_out = np.empty((query.shape[0], k), dtype=np.int64)
    step = block_rows(t.shape[0], bytes_per_value=8)
    for lo in range(0, query.shape[0], step):
        q = torch.as_tensor(query[lo : lo + step], dtype=torch.float64)
        dist, idx = torch.topk(torch.cdist(q, t), k, dim=1, largest=False)
        dist_out[lo : lo + step], idx_out[lo : lo + step] = dist.numpy(), idx.numpy()
    return dist_out, idx_out


def weighted_mean(dist: np.ndarray, idx: np.ndarray, z_train: np.ndarray) -> np.ndarray:
    """Inverse-distance-weighted mean of the neighbours' targets, per query row. `z_train` is (n,) or (n, c): with
    one-hot class columns the weighted mean is the weighted vote's class shares. A query at distance 0 from training
    rows takes the mean of exactly those rows (the limit of the weights)."""
    exact = dist == 0
    weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), 1.0 / np.maximum(dist, 1e-300))
    zk = np.asarray(z_train, dtype=np.float64)[idx]
    weights = weights.reshape(*weights.shape, *([1] * (zk.ndim - 2)))
    return (weights * zk).sum(axis=1) / weights.sum(axis=1)


def weighted_knn(train: np.ndarray, z_train: np.ndarray, query: np.ndarray, k: int,
                 key: str = "redshift.zero_shot_neighbours") -> np.ndarray:
    """Inverse-distance-weighted mean of the k nearest training rows' targets (Euclidean), per query row."""
    return weighted_mean(*nearest(train, query, k, key), z_train)


def fit_few_shot(train: np.ndarray, z_train: np.ndarray, seed: int = 0, epochs: int = 200,
                 hidden: int = 64, classes: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Train a two-layer MLP (full-batch Adam, CPU, seeded) on standardised embeddings; return its predictor.

    A regressor of `z_train` by default ((n,), or (n, m) for m outputs at once, each with its own MSE); with
    `classes` > 0 a classifier of the integer codes in `z_train` (cross-entropy; the predictor returns codes).
    Fitted once per target modality and applied to both query modalities, since the network depends only on the
    training embeddings.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(train, dtype=torch.float32)
    y = torch.as_tensor(z_train, dtype=torch.int64 if classes else torch.float32)
    dim = x.shape[1]
    outputs = classes or (y.shape[1] if y.dim() == 2 else 1)
    y = y if classes or y.dim() == 2 else y[:, None]
    layers = [
        torch.nn.Linear(dim, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, outputs),
    ]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                bound = 1 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        if classes:
            loss = torch.nn.functional.cross_entropy(net(x), y)
        else:
            loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()

    def predict(query: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.as_tensor(query, dtype=torch.float32))
            if classes:
                return out.argmax(dim=1).numpy()
            return out.double().numpy() if np.ndim(z_train) == 2 else out.squeeze(1).double().numpy()

    return predict
