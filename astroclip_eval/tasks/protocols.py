"""The building blocks of the AstroCLIP paper's protocols, which `downstream` applies to every label.

- zero_shot: distance-weighted kNN (k = 64 in the paper) on embeddings standardised with the train split;
- few_shot: a small MLP (two hidden layers of 64) trained on the same standardised embeddings (seeded), by the
  project's recipe or the paper's (`RECIPES`); for a Galaxy Zoo question, optionally on its vote fractions as the
  original AstroCLIP's morphology code trains it (`VOTE_FRACTIONS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks.neighbours import euclidean_knn


def standardiser(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the training embeddings (a constant dimension gets std 1), in
    float64 as scikit-learn's StandardScaler: float32 statistics move near-ties enough to swap neighbours."""
    train = np.asarray(train, dtype=np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def nearest(train: np.ndarray, query: np.ndarray, k: int, key: str = "protocols.zero_shot_neighbours",
            device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (q, k) and indices (q, k) of the k nearest training rows per query row, as a float64
    search finds them (`neighbours.euclidean_knn`). Kept apart from the averaging so several labels on the same rows
    share one search."""
    if k > train.shape[0]:
        raise UserError(f"{key}: {k} neighbours requested from {train.shape[0]} valid training rows")
    return euclidean_knn(train, query, k, device)


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
                 key: str = "protocols.zero_shot_neighbours") -> np.ndarray:
    """Inverse-distance-weighted mean of the k nearest training rows' targets (Euclidean), per query row."""
    return weighted_mean(*nearest(train, query, k, key), z_train)


@dataclass(frozen=True)
class Recipe:
    """How the few-shot MLP is trained: Adam on shuffled batches of `batch` rows for at most `epochs` epochs. With
    `holdout` > 0 that share of the train rows is kept out of training and the network stops when its loss there has
    not improved for `patience` epochs, keeping its best weights."""

    activation: type[torch.nn.Module]
    dropout: float
    lr: float
    weight_decay: float
    batch: int
    epochs: int
    holdout: float = 0.0
    patience: int = 0
    weighted: bool = False  # each epoch draws its rows with replacement, weighted by their largest target fraction


RECIPES = {
    # the project's: GELU, Adam 3e-3 on batches of 2,048, stopped by a held-out tenth of the train split (20 epochs
    # without improvement), keeping the best epoch; measured on the demo against its earlier full-batch recipe
    # (200 steps): in-modal scores within the five seeds' spread, cross-modal ones higher (benchmarks/README.md)
    "project": Recipe(torch.nn.GELU, dropout=0.0, lr=3e-3, weight_decay=1e-4, batch=2048, epochs=400, holdout=0.1,
                      patience=20),
    # the AstroCLIP paper's code: ReLU, dropout 0.1, Adam 1e-3, shuffled batches of 64, 10 epochs
    "paper": Recipe(torch.nn.ReLU, dropout=0.1, lr=1e-3, weight_decay=0.0, batch=64, epochs=10),
}
# Below this many train rows there is no held-out part: the network trains all `epochs` on every row.
MIN_HOLDOUT_ROWS = 20
# The original AstroCLIP's morphology head (downstream_tasks/morphology_classification): three hidden layers of 256,
# ReLU, dropout 0.2, Adam 1e-3, batches of 256, 25 epochs, cross-entropy against a question's vote fractions, each
# epoch's rows drawn with replacement weighted by their largest fraction, a tenth held out and its best epoch kept
# (no early stop). The original applies a softmax before PyTorch's cross-entropy (a second one inside it); here the
# cross-entropy is of the network's own softmax.
VOTE_FRACTIONS = Recipe(torch.nn.ReLU, dropout=0.2, lr=1e-3, weight_decay=0.0, batch=256, epochs=25, holdout=0.1,
                        patience=25, weighted=True)
VOTE_FRACTIONS_HIDDEN = (256, 256, 256)


def train_held_out(
    module: torch.nn.Module, loss: Callable[[torch.Tensor], torch.Tensor], fit_rows: torch.Tensor,
    held_rows: torch.Tensor | None, optimizer: torch.optim.Optimizer, draw: Callable[[], torch.Tensor], epochs: int,
    batch: int, patience: int, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, name: str | None = None,
) -> None:
    """The one training loop of the networks fitted on the train split (the few-shot MLPs, the posteriors' flows):
    per epoch, `draw()` orders (or resamples) positions in `fit_rows`, taken `batch` at a time; `loss(rows)` is the
    mean loss of those rows. With `held_rows`, after each epoch their loss is measured, the module stops once it has
    not improved for `patience` epochs, and it keeps its best epoch's state; without, it trains every epoch. With a
    `name` (its config key and what it is), a loss that is not finite stops it in one line naming it."""
    best, best_state, waited = math.inf, None, 0
    for epoch in range(epochs):
        module.train()
        for rows in fit_rows[draw().to(fit_rows.device)].split(batch):
            value = loss(rows)
            if name is not None and not torch.isfinite(value):
                raise UserError(f"{name} diverged (loss {value.item()} at epoch {epoch + 1}); nothing written")
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if held_rows is None:
            continue
        module.eval()
        with torch.no_grad():
            held = float(loss(held_rows))
        if held < best:
            best, best_state, waited = held, {k: v.clone() for k, v in module.state_dict().items()}, 0
        elif (waited := waited + 1) >= patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()


def few_shot_hidden(recipe: str, label: str, target: str) -> tuple[int, ...]:
    """Hidden layer widths: two of 64, except the paper's one layer of 32 for redshift from image embeddings."""
    return (32,) if recipe == "paper" and label == "redshift" and target == "image" else (64, 64)


def fit_few_shot(train: np.ndarray, z_train: np.ndarray, seed: int = 0, hidden: tuple[int, ...] = (64, 64),
                 classes: int = 0, recipe: str | Recipe = "project", device: torch.device | str = "cpu"
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """Train an MLP (seeded) on standardised embeddings by one of the `RECIPES` (or a `Recipe`); return its
    predictor.

    A regressor of `z_train` by default ((n,), or (n, m) for m outputs at once, each with its own MSE); with
    `classes` > 0 a classifier (cross-entropy; the predictor returns codes) of the integer codes in `z_train`, or of
    its rows of class fractions ((n, classes), each row summing to 1: vote fractions). Fitted once per target
    modality and applied to both query modalities, since the network depends only on the training embeddings.
    Seeds are drawn on the CPU, so a run on a GPU starts from the same weights and batches.
    """
    how = RECIPES[recipe] if isinstance(recipe, str) else recipe
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(train, dtype=torch.float32)
    soft = bool(classes) and np.ndim(z_train) == 2
    y = torch.as_tensor(z_train, dtype=torch.int64 if classes and not soft else torch.float32)
    outputs = classes or (y.shape[1] if y.dim() == 2 else 1)
    y = y if classes or y.dim() == 2 else y[:, None]
    widths = [x.shape[1], *hidden]
    layers: list[torch.nn.Module] = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(width_in, width_out), how.activation()]
        layers += [torch.nn.Dropout(how.dropout)] if how.dropout else []
    layers.append(torch.nn.Linear(widths[-1], outputs))
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                bound = 1 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    net = torch.nn.Sequential(*layers).to(device)
    held = int(how.holdout * x.shape[0]) if x.shape[0] >= MIN_HOLDOUT_ROWS else 0
    order = torch.randperm(x.shape[0], generator=generator) if held else torch.arange(x.shape[0])
    fit_rows = order[held:]  # batches are taken by row number: no second copy of the training rows
    weights = y[fit_rows].max(dim=1).values.double() if how.weighted else None
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=how.lr, weight_decay=how.weight_decay)
    loss_of = torch.nn.functional.cross_entropy if classes else torch.nn.functional.mse_loss

    def draw() -> torch.Tensor:
        if how.weighted:  # drawn with replacement, weighted by their largest fraction (the original's sampler)
            return torch.multinomial(weights, fit_rows.shape[0], replacement=True, generator=generator)
        return torch.randperm(fit_rows.shape[0], generator=generator)

    with torch.random.fork_rng(devices=[], enabled=how.dropout > 0):  # the caller's global generator is left as it was
        if how.dropout:
            torch.manual_seed(seed)  # dropout's masks
        train_held_out(net, lambda rows: loss_of(net(x[rows]), y[rows]), fit_rows.to(device),
                       order[:held].to(device) if held else None, opt, draw, how.epochs, how.batch, how.patience)

    def predict(query: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.as_tensor(query, dtype=torch.float32, device=device)).cpu()
            if classes:
                return out.argmax(dim=1).numpy()
            return out.double().numpy() if np.ndim(z_train) == 2 else out.squeeze(1).double().numpy()

    return predict
