"""The AstroCLIP paper's redshift protocols, beside the reproduction's kNN on the validation set itself.

- zero_shot: distance-weighted kNN (k = 64 in the paper) on standardised embeddings, neighbours and standardisation
  fitted on a training split of the embeddings, queries from the validation split;
- few_shot: a small MLP regressor trained on the training split's embeddings (CPU, seeded).

Both use valid rows only, on both splits. As in `redshift.evaluate`, there are four rows per protocol: the query
modality (validation embeddings) against the target modality (training embeddings the predictor was fitted on).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from .errors import UserError
from .neighbours import block_rows
from .redshift import MODALITIES, r2_score


def standardiser(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the training embeddings (a constant dimension gets std 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def weighted_knn(train: np.ndarray, z_train: np.ndarray, query: np.ndarray, k: int,
                 key: str = "redshift.zero_shot_neighbours") -> np.ndarray:
    """Inverse-distance-weighted mean of the k nearest training rows' targets (Euclidean), per query row.

    `z_train` is (n,) or (n, c): with one-hot class columns the weighted mean is the weighted vote's class shares.
    A query at distance 0 from training rows takes the mean of exactly those rows (the limit of the weights).
    """
    if k > train.shape[0]:
        raise UserError(f"{key}: {k} neighbours requested from {train.shape[0]} valid training rows")
    t = torch.as_tensor(train, dtype=torch.float64)
    z = torch.as_tensor(z_train, dtype=torch.float64)
    out = np.empty((query.shape[0], *z.shape[1:]), dtype=np.float64)
    step = block_rows(t.shape[0], bytes_per_value=8)
    for lo in range(0, query.shape[0], step):
        q = torch.as_tensor(query[lo : lo + step], dtype=torch.float64)
        dist, idx = torch.topk(torch.cdist(q, t), k, dim=1, largest=False)
        zk = z[idx]
        exact = dist == 0
        weights = torch.where(exact.any(dim=1, keepdim=True), exact.double(), 1.0 / dist.clamp_min(1e-300))
        weights = weights.reshape(*weights.shape, *([1] * (zk.dim() - 2)))
        out[lo : lo + step] = ((weights * zk).sum(dim=1) / weights.sum(dim=1)).numpy()
    return out


def fit_few_shot(train: np.ndarray, z_train: np.ndarray, seed: int = 0, epochs: int = 200,
                 hidden: int = 64, classes: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Train a two-layer MLP (full-batch Adam, CPU, seeded) on standardised embeddings; return its predictor.

    A regressor of `z_train` by default; with `classes` > 0 a classifier of the integer codes in `z_train`
    (cross-entropy; the predictor returns codes). Fitted once per target modality and applied to both query
    modalities, since the network depends only on the training embeddings.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(train, dtype=torch.float32)
    y = torch.as_tensor(z_train, dtype=torch.int64 if classes else torch.float32)
    dim = x.shape[1]
    layers = [
        torch.nn.Linear(dim, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, classes or 1),
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
            loss = torch.nn.functional.mse_loss(net(x).squeeze(1), y)
        loss.backward()
        opt.step()

    def predict(query: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.as_tensor(query, dtype=torch.float32))
            return out.argmax(dim=1).numpy() if classes else out.squeeze(1).double().numpy()

    return predict


def evaluate_trained(
    valid_emb: dict[str, np.ndarray], z_valid: np.ndarray, train_emb: dict[str, np.ndarray], z_train: np.ndarray,
    protocols: list[str], k: int = 64, seed: int = 0,
) -> tuple[pd.DataFrame, dict[tuple[str, str, str], np.ndarray]]:
    """R^2 rows `protocol,query,target,r2` for the protocols fitted on the training split (valid rows of both).

    Each predictor is fitted once per target modality (standardised with that modality's training embeddings) and
    asked about both query modalities.
    """
    predictions = {}
    for target in MODALITIES:
        mean, std = standardiser(train_emb[target])
        x_train = (train_emb[target] - mean) / std
        for protocol in protocols:
            if protocol == "zero_shot":
                predict = lambda query, x_train=x_train: weighted_knn(x_train, z_train, query, k)  # noqa: E731
            elif protocol == "few_shot":
                predict = fit_few_shot(x_train, z_train, seed=seed)
            else:
                raise ValueError(protocol)
            for query in MODALITIES:
                predictions[(protocol, query, target)] = predict((valid_emb[query] - mean) / std)
    keys = [(p, q, t) for p in protocols for q in MODALITIES for t in MODALITIES]
    rows = [{"protocol": p, "query": q, "target": t, "r2": r2_score(z_valid, predictions[(p, q, t)])} for p, q, t in keys]
    return pd.DataFrame(rows, columns=["protocol", "query", "target", "r2"]), {key: predictions[key] for key in keys}
