"""Labels of the downstream tasks beyond redshift, from the joined catalogues: `properties` (numbers, regression)
and `classifications` (a class per galaxy), as io/definitions.py reads their entries from the config.

Catalogues carry failed fits (PROVABGS writes -999), so a row is judged per catalogue before any label is read from
it: a row holding one of the catalogue's `sentinels` in a column its labels or filter read, or failing one of its
`valid` conditions, is dropped for every label from that catalogue, and each rule's drops are counted. A derived
property is undefined wherever an operand is missing, not finite or outside the range a property declares for that
column (`LOG_MSTAR`'s `range: {min: 0}` holds inside `log10(AVG_SFR) - LOG_MSTAR` too), or where its value is not
finite."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from astroclip_eval.io.definitions import conditions, declared_ranges, expression, label_columns
from astroclip_eval.io.errors import UserError, short

MAX_CLASSES = 100  # classes per question unless its max_classes says otherwise (the schema's default)


def fraction_columns(name: str, entry: Mapping[str, Any]) -> list[str]:
    """The label table's columns holding a question's vote fractions (`vote_fractions`), one per answer in the
    order of `answer_names`: `{question}:{answer}`."""
    return [f"{name}:{answer}" for answer in answer_names(entry["answers"])]


def property_values(
    name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray], usable: np.ndarray,
    ranges: Mapping[str, Mapping] | None = None,
) -> np.ndarray:
    """float64 per survey row; NaN where the value is undefined: a row the catalogue does not have or dropped (not
    `usable`), an operand missing, outside its column's declared range (`ranges`: column -> {min, max}), a value
    that is not finite, or outside the property's own `valid` range."""
    ranges = ranges or {}
    n = usable.size
    operands = {}
    for col in expression(name, entry).columns:
        if np.asarray(columns[col]).dtype.kind not in "iufb":
            text = pd.Series(columns[col]).dropna()
            bad = text[pd.to_numeric(text, errors="coerce").isna()]
            first = f" ({short(bad.iloc[0])} at survey row {bad.index[0]})" if bad.size else ""
            raise UserError(f"properties.{name}: column {short(col)} of catalogue {entry['catalogue']} holds text, "
                            f"not numbers{first}")
        values = np.asarray(columns[col], dtype=np.float64)
        operands[col] = np.where(_within(values, ranges.get(col, {})), values, np.nan)
    values = np.broadcast_to(expression(name, entry).evaluate(operands), (n,))
    keep = usable & _within(values, entry.get("range", {}))
    if not keep.any():
        raise UserError(
            f"properties.{name}: no finite value of {entry.get('column') or entry.get('expression')!r} "
            f"in catalogue {entry['catalogue']} for the matched rows"
        )
    return np.where(keep, values, np.nan)


def _within(values: np.ndarray, bounds: Mapping[str, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= bounds.get("min", -np.inf)) & (values <= bounds.get("max", np.inf))


def class_labels(name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """A class name per survey row (None where there is none): the categorical column, or the answer with the
    largest fraction among rows with at least `min_votes` votes."""
    if "column" in entry:
        raw = columns[entry["column"]]
        labels = np.array([None if _missing(v) else _class_name(v) for v in raw], dtype=object)
    else:
        for col in entry["answers"]:
            if np.asarray(columns[col]).dtype.kind not in "iufb":
                raise UserError(f"classifications.{name}: answer column {short(col)} of catalogue {entry['catalogue']} "
                                "holds text, expected vote fractions")
        fractions = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in entry["answers"]])
        names = answer_names(entry["answers"])
        with np.errstate(invalid="ignore"):  # every fraction a number >= 0, one of them > 0: else no class
            known = (np.isfinite(fractions) & (fractions >= 0)).all(axis=1) & (fractions.max(axis=1) > 0)
        if "min_votes" in entry:
            votes = np.asarray(columns[entry["min_votes"]["column"]], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                known &= votes >= entry["min_votes"]["value"]
        best = np.argmax(np.nan_to_num(fractions, nan=-np.inf), axis=1)
        labels = np.array([names[b] if k else None for b, k in zip(best, known)], dtype=object)
    if all(label is None for label in labels):
        raise UserError(f"classifications.{name}: no matched row of catalogue {entry['catalogue']} has a class")
    found = {label for label in labels if label is not None}
    if len(found) > entry.get("max_classes", MAX_CLASSES):
        raise UserError(f"classifications.{name}: {len(found):,} classes in catalogue {entry['catalogue']}, more than "
                        f"max_classes ({entry.get('max_classes', MAX_CLASSES)}); is {short(entry.get('column'))} a class?")
    return labels


def _class_name(value: Any) -> str:
    """A class as text, kept as written (NA, None and null are classes); integer codes, stored as floats where a
    column has gaps, read as the integer (2.0 -> "2")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def answer_names(columns: list[str]) -> list[str]:
    """Short class names from answer columns: their common prefix and suffix removed
    (smooth-or-featured_smooth_debiased -> smooth)."""
    if len(columns) < 2:
        return list(columns)
    prefix = len(_common([c for c in columns]))
    suffix = len(_common([c[::-1] for c in columns]))
    names = [c[prefix : len(c) - suffix] or c for c in columns]
    return names if len(set(names)) == len(names) else list(columns)


def _common(words: list[str]) -> str:
    out = words[0]
    for w in words[1:]:
        while not w.startswith(out):
            out = out[:-1]
    return out


def _missing(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and not np.isfinite(value)) or (isinstance(value, str) and not value.strip())
    )


def usable_rows(
    config: Mapping[str, Any], catalogue: str, columns: Mapping[str, np.ndarray], matched: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Which survey rows may take labels from this catalogue, and how many matched rows each rule dropped, in turn:
    a sentinel in any label column (a failed fit), then each `valid` condition."""
    entry = config["catalogues"][catalogue]
    keep = np.asarray(matched, dtype=bool).copy()
    dropped: dict[str, int] = {}
    if entry.get("sentinels"):
        failed = np.zeros(keep.size, dtype=bool)
        for col in label_columns(config, catalogue):
            values = columns[col]
            if np.asarray(values).dtype.kind in "iuf":
                failed |= np.isin(values, entry["sentinels"])
        dropped[f"sentinel {', '.join(f'{v:g}' for v in entry['sentinels'])}"] = int((keep & failed).sum())
        keep &= ~failed
    for cond in conditions(catalogue, entry):
        holds = np.broadcast_to(cond.holds(columns), keep.shape)
        dropped[cond.text] = int((keep & ~holds).sum())
        keep &= holds
    return keep, dropped


def vote_fractions(entry: Mapping[str, Any], columns: Mapping[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(rows, answers) fractions normalised to sum to 1 (debiased fractions need not), NaN on rows without a class."""
    fractions = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in entry["answers"]])
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = fractions / fractions.sum(axis=1, keepdims=True)
    fractions[np.array([label is None for label in labels])] = np.nan
    return fractions


def answer_cut(name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray], labels: np.ndarray) -> int:
    """Remove the class of galaxies with `min_answers` or fewer answers to the question (the original tests only on
    galaxies with more than 34); the rows it removed. Refused when no galaxy with a class is left."""
    cut = entry["min_answers"]
    answers = np.asarray(columns[cut["column"]], dtype=np.float64)
    have = np.array([label is not None for label in labels])
    with np.errstate(invalid="ignore"):
        keep = answers > cut["value"]
    if not (have & keep).any():
        most = np.nanmax(answers[have]) if have.any() else math.nan
        raise UserError(f"classifications.{name}.min_answers: no validation galaxy with a class has more than "
                        f"{cut['value']:g} answers in {short(cut['column'])} (most: {most:g}); nothing written")
    labels[have & ~keep] = None
    return int((have & ~keep).sum())


def feature_columns(name: str, entry: Mapping[str, Any]) -> list[str]:
    """The label table's columns holding a baseline's features, one per catalogue column: `baseline:{name}:{column}`."""
    return [f"baseline:{name}:{column}" for column in entry["columns"]]


def feature_values(name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray], usable: np.ndarray,
                   sentinels: list[float]) -> tuple[np.ndarray, int]:
    """A baseline's (rows, columns) features, NaN on rows the catalogue does not have or dropped and on rows holding
    one of its sentinels in a feature column (a failed fit has no features); and how many kept rows those were. A
    kept row with a feature that is not a finite number is refused: a baseline scored on invented values is no
    baseline."""
    values = []
    for col in entry["columns"]:
        raw = np.asarray(columns[col])
        if raw.dtype.kind not in "iufb":
            raise UserError(f"baselines.{name}.columns: column {short(col)} of catalogue {entry['catalogue']} holds "
                            "text, expected numbers")
        values.append(raw.astype(np.float64))
    features = np.column_stack(values)
    failed = np.isin(features, sentinels).any(axis=1) if sentinels else np.zeros(features.shape[0], dtype=bool)
    keep = usable & ~failed
    bad = keep & ~np.isfinite(features).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        col = entry["columns"][int(np.flatnonzero(~np.isfinite(features[row]))[0])]
        raise UserError(f"baselines.{name}.columns: {int(bad.sum()):,} matched rows of catalogue {entry['catalogue']} "
                        f"have a value of {short(col)} that is not a finite number (first at survey row {row}); "
                        "expected finite features (or one of the catalogue's sentinels for a failed fit)")
    if not keep.any():
        raise UserError(f"baselines.{name}: no row of this split has features from catalogue {entry['catalogue']} "
                        f"({', '.join(entry['columns'])}); nothing written")
    return np.where(keep[:, None], features, np.nan), int((usable & failed).sum())


def label_table(
    config: Mapping[str, Any], columns: Mapping[str, Mapping[str, np.ndarray]], matched: Mapping[str, np.ndarray],
    split: str = "valid",
) -> tuple[pd.DataFrame, dict[str, dict[str, int]], dict[str, int]]:
    """One row per survey row of the split (`row`, then each property and each classification, a question's vote
    fractions when it trains on them, and each baseline's features); per catalogue, the rows each of its rules
    dropped (a question's `min_answers` cut, on the validation split only, among them); per label, the rows its
    catalogue kept on which it is undefined (and per baseline, `baseline:{name}`, the kept rows a sentinel left
    without features). `matched` says per catalogue which survey rows it has."""
    n = len(next(iter(matched.values())))
    table: dict[str, np.ndarray] = {"row": np.arange(n)}
    usable, dropped = {}, {}
    for catalogue in columns:
        usable[catalogue], dropped[catalogue] = usable_rows(config, catalogue, columns[catalogue], matched[catalogue])
    for name, entry in config.get("properties", {}).items():
        cat = entry["catalogue"]
        table[name] = property_values(name, entry, columns[cat], usable[cat], declared_ranges(config, cat))
    for name, entry in config.get("classifications", {}).items():
        cat = entry["catalogue"]
        labels = class_labels(name, entry, columns[cat])
        labels[~usable[cat]] = None
        if split == "valid" and "min_answers" in entry:
            dropped[cat][f"{name}: {short(entry['min_answers']['column'])} <= {entry['min_answers']['value']:g}"] = (
                answer_cut(name, entry, columns[cat], labels))
        table[name] = labels
        if entry.get("vote_fractions"):
            table.update(zip(fraction_columns(name, entry), vote_fractions(entry, columns[cat], labels).T))
    failed = {}
    for name, entry in config.get("baselines", {}).items():
        cat = entry["catalogue"]
        features, failed[f"baseline:{name}"] = feature_values(
            name, entry, columns[cat], usable[cat], config["catalogues"][cat].get("sentinels", []))
        table.update(zip(feature_columns(name, entry), features.T))
    frame = pd.DataFrame(table)
    undefined = {
        name: int((usable[entry["catalogue"]] & frame[name].isna().to_numpy()).sum())
        for kind in ("properties", "classifications")
        for name, entry in config.get(kind, {}).items()
    }
    return frame, dropped, {**undefined, **failed}
