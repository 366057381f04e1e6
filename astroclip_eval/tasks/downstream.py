"""The downstream tasks on one core: a label per galaxy (a number, such as the redshift or a galaxy property, or a
class), the protocols applied to it, and the scores.

- reproduction: the k nearest validation rows by cosine similarity (the query left out in-modal): their mean, or
  their majority vote (a tie goes to the first class in name order);
- zero_shot: distance-weighted kNN on embeddings standardised with the train split (targets standardised too),
  the weighted mean or the weighted vote;
- few_shot: an MLP (two hidden layers of 64) on the same standardised embeddings, a regressor or a classifier (of
  a question's vote fractions, as the original AstroCLIP's morphology head, when it asks for `vote_fractions`).

Only rows that are valid and have the label take part, on both splits. Scores: R^2 for numbers; for classes accuracy,
balanced accuracy, weighted and macro F1, and what always guessing the most common true class scores (its accuracy,
the share of that class; its balanced accuracy, one over the classes)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import MODALITIES, Protocols, protocol_runs
from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.neighbours import require_finite, top_k
from astroclip_eval.tasks.protocols import (
    VOTE_FRACTIONS,
    VOTE_FRACTIONS_HIDDEN,
    few_shot_hidden,
    fit_few_shot,
    nearest,
    standardiser,
    weighted_mean,
)

PAIRS = [(q, t) for q in MODALITIES for t in MODALITIES]
FEATURES = "features"  # the one modality of a baseline: a feature set read from a catalogue (tasks/baselines.py)
PROPERTY_COLUMNS = ["protocol", "property", "query", "target", "n", "r2", "r2_lo", "r2_hi"]
CLASS_SCORES = ("accuracy", "balanced_accuracy", "f1_weighted", "f1_macro")
CLASS_COLUMNS = ["protocol", "question", "query", "target", "n",
                 *[f"{score}{end}" for score in CLASS_SCORES for end in ("", "_lo", "_hi")],
                 "majority", "majority_balanced"]
PREDICTION_COLUMNS = ["row", "targetid", "task", "label", "protocol", "query", "target", "true", "predicted"]


@dataclass
class Labelled:
    """One split's rows that take part in a task: their embeddings per modality and their labels."""

    embeddings: dict[str, np.ndarray]
    labels: np.ndarray  # float64 values, or int64 class codes
    rows: np.ndarray  # which rows of the split these are

    @property
    def digest(self) -> str:
        """Names the row set, so labels on the same rows share one neighbour search."""
        return hashlib.sha1(self.rows.tobytes()).hexdigest()

    @classmethod
    def select(cls, embeddings: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray, codes: bool) -> Labelled:
        rows = labelled_rows(labels, rows, codes)
        picked = {m: e[rows] for m, e in embeddings.items()}
        for modality, emb in picked.items():
            require_finite(emb, f"{modality} embeddings", rows)
        return cls(picked, labels[rows], rows)


def modality_pairs(embeddings: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """The (query, target) pairs of the modalities present, query first: the four of a model's two embeddings, or
    one for a baseline's features."""
    present = [m for m in MODALITIES if m in embeddings] + [m for m in embeddings if m not in MODALITIES]
    return [(q, t) for q in present for t in present]


def labelled_rows(labels: np.ndarray, rows: np.ndarray, codes: bool) -> np.ndarray:
    """The rows among `rows` that have a label: a finite value, or a class code >= 0."""
    return rows[labels[rows] >= 0 if codes else np.isfinite(labels[rows])]


def prediction_table(
    task: str, label: str, rows: np.ndarray, targetids: np.ndarray, truth: np.ndarray,
    predictions: dict[tuple[str, str, str], np.ndarray], classes: list[str] | None = None,
) -> pd.DataFrame:
    """One row per scored galaxy and (protocol, query, target): the split's row, its TARGETID, the true and the
    predicted value (class names for a question), so every score in the tables can be recomputed from it."""
    name = (lambda codes: np.asarray(classes, dtype=object)[codes]) if classes is not None else (lambda v: v)
    frames = [
        pd.DataFrame({"row": rows, "targetid": targetids[rows], "task": task, "label": label, "protocol": protocol,
                      "query": query, "target": target, "true": name(truth), "predicted": name(pred)})
        for (protocol, query, target), pred in predictions.items()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREDICTION_COLUMNS)


def label_predictions(table: pd.DataFrame, rows: np.ndarray, prop_pred: dict, class_pred: dict
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The properties' and the questions' per-galaxy predictions (`evaluate_all`'s), each on the rows among `rows`
    that have the label, named by the label table's TARGETIDs."""
    ids = table["targetid"].to_numpy()
    props = [prediction_table("properties", name, labelled_rows(table[name].to_numpy(float), rows, codes=False), ids,
                              truth, pred) for name, (truth, pred) in prop_pred.items()]
    classes = [prediction_table("classifications", name, rows[table[name].iloc[rows].notna().to_numpy()], ids, truth,
                                pred, classes=names) for name, (names, truth, pred) in class_pred.items()]
    return tuple(pd.concat(f, ignore_index=True) if f else pd.DataFrame(columns=PREDICTION_COLUMNS)
                 for f in (props, classes))


def require_variance(name: str, truth: np.ndarray) -> None:
    """R^2 divides by the label's spread on the scored rows: a label with one value there, or values whose squares
    overflow, has no R^2, and is refused in one line rather than written as NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.var(np.asarray(truth, dtype=np.float64))
    if not np.isfinite(spread) or spread == 0 or np.ptp(truth) == 0:
        what = f"one value ({truth[0]:g})" if np.ptp(truth) == 0 else "values too large for a variance"
        raise UserError(f"{name}: the label has {what} on all {truth.size:,} scored validation rows; R^2 is undefined")


def r2_score(truth: np.ndarray, pred: np.ndarray) -> float:
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2))


def majority(truth: np.ndarray) -> float:
    return float(np.bincount(truth).max() / truth.size)


def majority_balanced(truth: np.ndarray) -> float:
    """The balanced accuracy of always guessing one class: one over the classes among the true labels."""
    return float(1 / np.unique(truth).size)


def _vote(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class per row of (q, k) codes; ties to the lowest code."""
    counts = np.zeros((codes.shape[0], n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(codes.shape[0]), codes.shape[1]), codes.ravel()), 1)
    return counts.argmax(axis=1)


@dataclass
class Searches:
    """What the labels of one step share, each kind under a key of what it depends on: labels known on the same
    rows share their standardisation and their neighbour searches, and properties fitted jointly their network."""

    # (target modality, train rows' digest) -> the train embeddings' mean and std
    standardisers: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (query, target, k, query excluded, rows' digest) -> the reproduction's top_k
    reproduction: dict[tuple[str, str, int, bool, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (query, target, k, train rows' digest, valid rows' digest) -> zero_shot's distances and indices
    zero_shot: dict[tuple[str, str, int, str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (label, target, train rows' digest) -> the joint few_shot network's prediction of that label
    few_shot: dict[tuple[str, str, str], Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)

    def standardiser(self, target: str, digest: str, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The standardisation of a target modality's train `embeddings` (the rows `digest` names), once per row set."""
        key = (target, digest)
        if key not in self.standardisers:
            self.standardisers[key] = standardiser(embeddings)
        return self.standardisers[key]


def reproduction(
    on: Labelled, protocols: Protocols, n_classes: int, name: str, searches: Searches | None = None,
    device: torch.device | str = "cpu",
) -> dict[tuple[str, str, str], np.ndarray]:
    """Predictions per (protocol column, query, target) from the k nearest validation rows that have the label, for
    each k of `protocols.reproduction_neighbours` (a list: one search at the largest, each smaller set its prefix)."""
    n, runs = on.labels.size, protocol_runs("reproduction", protocols.reproduction_neighbours)
    largest = max(kk for _, kk in runs)
    if largest > n - 1:
        raise UserError(f"{name}: protocols.reproduction_neighbours = {largest} needs at least {largest + 1} labelled "
                        f"valid rows, there are {n}")
    searches = Searches() if searches is None else searches
    out = {}
    for run, kk in runs:
        for query, target in modality_pairs(on.embeddings):
            same = protocols.exclude_self and query == target
            key = (query, target, largest, same, on.digest)
            if key not in searches.reproduction:
                searches.reproduction[key] = top_k(on.embeddings[query], on.embeddings[target], largest,
                                                   exclude_diagonal=same, device=device)
            idx = searches.reproduction[key][0][:, :kk]
            out[(run, query, target)] = _vote(on.labels[idx], n_classes) if n_classes else on.labels[idx].mean(axis=1)
    return out


def fitted(
    protocol: str,
    train: Labelled,
    valid: Labelled,
    protocols: Protocols,
    n_classes: int,
    name: str,
    searches: Searches | None = None,
    standardise_targets: bool = True,
    device: torch.device | str = "cpu",
    fractions: np.ndarray | None = None,
) -> dict[tuple[str, str, str], np.ndarray]:
    """zero_shot or few_shot predictions per (protocol column, query, target): fitted once per target modality on the
    train split. zero_shot runs at each k of `protocols.zero_shot_neighbours` from one search at the largest (each
    smaller set its prefix), and its searches are kept in `searches`, so labels on the same rows of both splits share
    them. Without `standardise_targets` the MLP learns the label as it is (the redshift under the project's recipe,
    whose few-shot numbers were measured that way; zero_shot is the same either way). `device` runs the searches and
    the MLP. `fractions` (a question's vote fractions per train split row, in class code order) has few_shot learn
    them by the original's morphology recipe instead of the classes."""
    if train.labels.size < 2:
        raise UserError(f"{name}: {train.labels.size} labelled valid rows in the train split, too few to fit {protocol}")
    searches = Searches() if searches is None else searches
    runs = protocol_runs(protocol, protocols.neighbours(protocol))
    seed, recipe = protocols.few_shot_seed, protocols.few_shot_recipe
    largest = max(kk or 0 for _, kk in runs)
    out = {}
    if n_classes:
        targets, scale = np.eye(n_classes)[train.labels], (0.0, 1.0)
    else:  # standardised as in the paper's protocol for the properties; predictions scaled back
        scale = (train.labels.mean(), train.labels.std() or 1.0) if standardise_targets else (0.0, 1.0)
        targets = (train.labels - scale[0]) / scale[1]
    pairs = modality_pairs(valid.embeddings)
    for target in dict.fromkeys(t for _, t in pairs):
        mean, std = searches.standardiser(target, train.digest, train.embeddings[target])
        x_train = None  # standardised when a fit or a search needs it, not for a search made for another label
        if protocol == "few_shot":
            net = searches.few_shot.get((name, target, train.digest))  # fitted jointly with other properties
            x_train = (train.embeddings[target] - mean) / std if net is None else None
            if net is None and fractions is not None:
                net = fit_few_shot(x_train, fractions[train.rows], seed=seed, classes=n_classes,
                                   hidden=VOTE_FRACTIONS_HIDDEN, recipe=VOTE_FRACTIONS, device=device)
            elif net is None:
                single = fit_few_shot(x_train, train.labels if n_classes else targets, seed=seed, classes=n_classes,
                                      hidden=few_shot_hidden(recipe, name, target), recipe=recipe, device=device)
                net = single if n_classes else lambda x, f=single: f(x) * scale[1] + scale[0]
        for query in dict.fromkeys(q for q, _ in pairs):
            if protocol == "few_shot":
                out[(protocol, query, target)] = net((valid.embeddings[query] - mean) / std)
                continue
            key = (query, target, largest, train.digest, valid.digest)
            if key not in searches.zero_shot:
                x_train = (train.embeddings[target] - mean) / std if x_train is None else x_train
                searches.zero_shot[key] = nearest(x_train, (valid.embeddings[query] - mean) / std, largest,
                                                  f"{name}: protocols.zero_shot_neighbours", device)
            dist, idx = searches.zero_shot[key]
            for run, kk in runs:
                pred = weighted_mean(dist[:, :kk], idx[:, :kk], targets)
                out[(run, query, target)] = pred.argmax(axis=1) if n_classes else pred * scale[1] + scale[0]
    return {(run, *pair): out[(run, *pair)] for run, _ in runs for pair in pairs}  # the tables' order: query first


def fit_joint_few_shot(
    names: list[str], train_emb: dict[str, np.ndarray], table: pd.DataFrame, rows: np.ndarray, protocols: Protocols,
    searches: Searches, device: torch.device | str = "cpu",
) -> None:
    """One MLP per target modality for all properties known on the same train rows (one standardised output each),
    put in `searches` for `fitted`: at the published size each fit takes minutes, and PROVABGS's properties share
    their rows, so five properties cost one fit instead of five."""
    groups: dict[bytes, tuple[np.ndarray, list[str]]] = {}
    for name in names:
        have = rows[np.isfinite(table[name].to_numpy(np.float64)[rows])]
        groups.setdefault(have.tobytes(), (have, []))[1].append(name)
    for have, members in groups.values():
        if len(members) < 2 or have.size < 2:
            continue
        y = table[members].to_numpy(np.float64)[have]
        y_mean, y_std = y.mean(axis=0), np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
        digest = hashlib.sha1(have.tobytes()).hexdigest()
        for target in train_emb:
            mean, std = searches.standardiser(target, digest, train_emb[target][have])  # fitted reuses it
            net = fit_few_shot((train_emb[target][have] - mean) / std, (y - y_mean) / y_std,
                               seed=protocols.few_shot_seed, recipe=protocols.few_shot_recipe, device=device)
            for j, name in enumerate(members):
                searches.few_shot[(f"properties.{name}", target, digest)] = (
                    lambda x, f=net, j=j, a=y_mean[j], b=y_std[j]: f(x)[:, j] * b + a
                )


def evaluate(
    name: str,
    valid_emb: dict[str, np.ndarray],
    valid_labels: np.ndarray,
    valid_rows: np.ndarray,
    train_emb: dict[str, np.ndarray] | None,
    train_labels: np.ndarray | None,
    train_rows: np.ndarray | None,
    protocols: Protocols,
    n_classes: int = 0,
    searches: Searches | None = None,
    standardise_targets: bool = True,
    device: torch.device | str = "cpu",
    draws: int = bootstrap.DRAWS,
    fractions: np.ndarray | None = None,
) -> tuple[list[dict], dict[tuple[str, str, str], np.ndarray], np.ndarray]:
    """Score rows (without the label's name column), predictions per (protocol, query, target), and the truth.

    A property's labels are float64 with NaN where missing; a question's are int64 codes with -1 where missing
    (`n_classes` > 0), and `fractions` its train split's vote fractions when few_shot learns them. Each score has its
    95% bootstrap interval over the scored rows (`draws` resamples)."""
    codes = n_classes > 0
    valid = Labelled.select(valid_emb, valid_labels, valid_rows, codes)
    if valid.labels.size < 2:
        raise UserError(f"{name}: {valid.labels.size} valid rows of the validation split have this label; nothing to score")
    if not codes:
        require_variance(name, valid.labels)
    predictions: dict[tuple[str, str, str], np.ndarray] = {}
    if "reproduction" in protocols.run:
        predictions.update(reproduction(valid, protocols, n_classes, name, searches, device))
    if protocols.trained:
        train = Labelled.select(train_emb, train_labels, train_rows, codes)
        for protocol in protocols.trained:
            predictions.update(fitted(
                protocol, train, valid, protocols, n_classes, name, searches, standardise_targets, device, fractions,
            ))
    rows = []
    for (protocol, query, target), pred in predictions.items():
        row = {"protocol": protocol, "query": query, "target": target, "n": int(valid.labels.size)}
        names = CLASS_SCORES if codes else ("r2",)
        if codes:
            whole = (valid.labels[None], np.asarray(pred)[None])  # one "resample": every row once
            row.update({n: float(getattr(bootstrap, n)(*whole)[0]) for n in CLASS_SCORES})
            row.update(majority=majority(valid.labels), majority_balanced=majority_balanced(valid.labels))
        else:
            row["r2"] = r2_score(valid.labels, pred)
        bootstrap.add_bounds(row, {n: getattr(bootstrap, n) for n in names}, (valid.labels, pred), draws)
        rows.append(row)
    return rows, predictions, valid.labels


def class_codes(*splits: np.ndarray, known: tuple[str, ...] = ()) -> tuple[list[str], list[np.ndarray]]:
    """Class names (sorted, over all splits and the `known` ones, such as every answer of a question whether or
    not it wins anywhere) and each split's labels as int64 codes, -1 where there is no class."""
    names = sorted({str(v) for labels in splits for v in labels if isinstance(v, str)} | set(known))
    index = {n: i for i, n in enumerate(names)}
    return names, [np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in s], dtype=np.int64) for s in splits]


def evaluate_all(
    properties: list[str],
    questions: list[str],
    valid_emb: dict[str, np.ndarray],
    valid_table: pd.DataFrame,
    valid_rows: np.ndarray,
    train_emb: dict[str, np.ndarray] | None,
    train_table: pd.DataFrame | None,
    train_rows: np.ndarray | None,
    protocols: Protocols,
    vote_fractions: tuple[str, ...] | list[str] = (),
    device: torch.device | str = "cpu",
    draws: int = bootstrap.DRAWS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """The properties' R^2 table and the questions' classification table, with what the figures need:
    {property: (truth, predictions)} and {question: (class names, truth, predictions)}. Labels on the same rows
    (PROVABGS's properties, as a rule) share each neighbour search. The questions in `vote_fractions` have few_shot
    learn their vote fractions (the label tables' `{question}:{answer}` columns)."""
    prop_rows, class_rows, prop_pred, class_pred = [], [], {}, {}
    searches = Searches()
    if "few_shot" in protocols.run and train_table is not None:
        fit_joint_few_shot(properties, train_emb, train_table, train_rows, protocols, searches, device)
    for name in properties:
        train_labels = train_table[name].to_numpy(np.float64) if train_table is not None else None
        rows, pred, truth = evaluate(
            f"properties.{name}",
            valid_emb,
            valid_table[name].to_numpy(np.float64),
            valid_rows,
            train_emb,
            train_labels,
            train_rows,
            protocols,
            searches=searches,
            device=device,
            draws=draws,
        )
        prop_rows += [{"property": name, **r} for r in rows]
        prop_pred[name] = (truth, pred)
    for name in questions:
        splits = [valid_table[name].to_numpy(object)] + ([train_table[name].to_numpy(object)] if train_table is not None else [])
        answers = [c.split(":", 1)[1] for c in valid_table.columns if c.startswith(f"{name}:")]  # labels.fraction_columns
        names, codes = class_codes(*splits, known=tuple(answers))
        fractions = None
        if name in vote_fractions and train_table is not None:
            fractions = train_table[[f"{name}:{answer}" for answer in names]].to_numpy(np.float64)
        rows, pred, truth = evaluate(
            f"classifications.{name}",
            valid_emb,
            codes[0],
            valid_rows,
            train_emb,
            codes[1] if len(codes) > 1 else None,
            train_rows,
            protocols,
            n_classes=len(names),
            searches=searches,
            fractions=fractions,
            device=device,
            draws=draws,
        )
        class_rows += [{"question": name, **r} for r in rows]
        class_pred[name] = (names, truth, pred)
    return (
        pd.DataFrame(prop_rows, columns=PROPERTY_COLUMNS),
        pd.DataFrame(class_rows, columns=CLASS_COLUMNS),
        prop_pred,
        class_pred,
    )
