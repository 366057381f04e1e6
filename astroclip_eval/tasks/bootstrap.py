"""Bootstrap intervals over the evaluated rows, and paired differences between two predictors on the same rows.

Every score of the workflow (R^2, accuracy, balanced accuracy, weighted and macro F1, the redshift's bias,
sigma_NMAD, sigma68 and outlier fraction, the retrieval figures) is recomputed on `draws` resamples of its rows drawn
with replacement; the interval is the 2.5 and 97.5 percentiles of those scores (the percentile bootstrap). The
resamples depend only on the number of rows and the seed, so two models scored on the same rows are resampled
identically: the difference of their scores per resample is the paired bootstrap, which cancels what both share (the
rows' own difficulty).

The score functions take arrays of shape (resamples, rows) and return one score per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

DRAWS = 1000  # resamples per interval (downstream.bootstrap)
SEED = 0
CHUNK_ELEMENTS = 2**22  # indices held at once (32 MiB of int64), whatever the number of rows
LEVEL = 0.95


def resamples(n: int, draws: int, seed: int = SEED) -> Iterator[np.ndarray]:
    """Row indices of `draws` resamples of n rows, in chunks of (resamples, n): the same for the same (n, seed)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, draws, chunk):
        yield rng.integers(0, n, size=(min(chunk, draws - start), n))


def distributions(scores: Mapping[str, Callable[..., np.ndarray]], arrays: tuple[np.ndarray, ...],
                  draws: int = DRAWS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Each score of each resample of the rows of `arrays` (each indexed by the same resampled rows): the resamples
    are drawn and gathered once for all the scores."""
    n = len(arrays[0])
    found: dict[str, list[np.ndarray]] = {name: [] for name in scores}
    for idx in resamples(n, draws, seed):
        gathered = [a[idx] for a in arrays]
        for name, score in scores.items():
            found[name].append(score(*gathered))
    return {name: np.concatenate(values) for name, values in found.items()}


def distribution(score: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...], draws: int = DRAWS,
                 seed: int = SEED) -> np.ndarray:
    """The score of each resample of the rows of `arrays`."""
    return distributions({"score": score}, arrays, draws, seed)["score"]


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of a bootstrap distribution."""
    lo, hi = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bounds_each(scores: Mapping[str, Callable[..., np.ndarray]], arrays: tuple[np.ndarray, ...], draws: int = DRAWS,
                seed: int = SEED) -> dict[str, tuple[float, float]]:
    """The 95% bootstrap interval of each score over the same resamples of the rows of `arrays`."""
    return {name: interval(values) for name, values in distributions(scores, arrays, draws, seed).items()}


def add_bounds(row: dict, scores: Mapping[str, Callable[..., np.ndarray]], arrays: tuple[np.ndarray, ...],
               draws: int = DRAWS, seed: int = SEED) -> None:
    """Put each score's 95% interval into a table's row, as `{name}_lo` and `{name}_hi`."""
    for name, (lo, hi) in bounds_each(scores, arrays, draws, seed).items():
        row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi


def bounds(score: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...], draws: int = DRAWS,
           seed: int = SEED) -> tuple[float, float]:
    """The 95% bootstrap interval of a score over the rows of `arrays`."""
    return bounds_each({"score": score}, arrays, draws, seed)["score"]


def paired(score: Callable[..., np.ndarray], first: tuple[np.ndarray, ...], second: tuple[np.ndarray, ...],
           draws: int = DRAWS, seed: int = SEED) -> dict[str, float | bool]:
    """The difference of a score between two predictors on the same rows (first minus second), its 95% paired
    bootstrap interval, and whether the interval excludes zero (the difference is resolved)."""
    if len(first[0]) != len(second[0]):
        raise ValueError("a paired comparison needs the same rows for both")
    whole = np.arange(len(first[0]))[None, :]
    difference = float(score(*(a[whole] for a in first))[0] - score(*(a[whole] for a in second))[0])
    diffs = distribution(lambda *a: score(*a[: len(first)]) - score(*a[len(first):]), (*first, *second), draws, seed)
    lo, hi = interval(diffs)
    return {"difference": difference, "lo": lo, "hi": hi, "resolved": bool(lo > 0 or hi < 0)}


# Scores over (resamples, rows) arrays


def r2(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    truth, pred = truth.astype(np.float64, copy=False), pred.astype(np.float64, copy=False)
    spread = np.sum((truth - truth.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample of one repeated value: no R^2 (interval skips it)
        return 1 - np.sum((truth - pred) ** 2, axis=-1) / spread


def accuracy(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.mean(truth == pred, axis=-1)


def _class_counts(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample and class code: the true support, the predicted count and the true positives, (resamples, C)."""
    n_classes = int(max(truth.max(), pred.max())) + 1
    offset = np.arange(truth.shape[0])[:, None] * n_classes

    def counts(codes: np.ndarray) -> np.ndarray:
        return np.bincount(codes.ravel(), minlength=truth.shape[0] * n_classes).reshape(-1, n_classes)

    return counts(truth + offset), counts(pred + offset), counts((truth + offset)[truth == pred])


def _f1(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample and class: F1 (0 where a class is neither true nor predicted), the support, and whether the
    class is true or predicted in the resample."""
    support, predicted, tp = _class_counts(truth, pred)
    present = support + predicted > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present, 2 * tp / (support + predicted), 0.0), support, present


def f1_weighted(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Weighted F1 of int class codes per resample (as downstream.f1_weighted on each)."""
    f1, support, _ = _f1(truth, pred)
    return np.sum(support * f1, axis=-1) / truth.shape[1]


def f1_macro(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro F1 per resample: the unweighted mean of F1 over the classes true or predicted in it (scikit-learn's
    f1_score(average="macro"))."""
    f1, _, present = _f1(truth, pred)
    return f1.sum(axis=-1) / present.sum(axis=-1)


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Balanced accuracy per resample: the mean recall over the classes true in it (scikit-learn's
    balanced_accuracy_score); always guessing one class scores 1 / the number of classes."""
    support, _, tp = _class_counts(truth, pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
    return recall.sum(axis=-1) / (support > 0).sum(axis=-1)


def _dz(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    truth = truth.astype(np.float64, copy=False)
    return (pred.astype(np.float64, copy=False) - truth) / (1 + truth)


def bias(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.median(_dz(truth, pred), axis=-1)


def sigma_nmad(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    dz = _dz(truth, pred)
    return 1.4826 * np.median(np.abs(dz - np.median(dz, axis=-1, keepdims=True)), axis=-1)


def sigma68(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Half the width of the central 68% of dz/(1+z): (p84 - p16) / 2."""
    p16, p84 = np.percentile(_dz(truth, pred), [16, 84], axis=-1)
    return (p84 - p16) / 2


def outlier_fraction(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(_dz(truth, pred)) > 0.15, axis=-1)


def top(k: int) -> Callable[[np.ndarray], np.ndarray]:
    """The share of own-counterpart ranks within the k best."""
    return lambda ranks: np.mean(ranks <= k, axis=-1)


def median(values: np.ndarray) -> np.ndarray:
    return np.median(values, axis=-1)


def mean(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)
