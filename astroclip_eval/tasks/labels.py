"""Labels of the downstream tasks beyond redshift, from the joined catalogues: `properties` (numbers, regression)
and `classifications` (a class per galaxy). The config's entries are checked here before any file is read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks.expressions import Expression

COORDINATES = ["RA", "DEC"]  # default columns of the catalogue that gives a sky match its coordinates


def expression(name: str, entry: Mapping[str, Any]) -> Expression:
    """A property's value as an expression (a plain column is the expression of one name)."""
    if "expression" in entry:
        return Expression(entry["expression"], f"properties.{name}.expression")
    return (
        Expression(entry["column"], f"properties.{name}.column") if entry["column"].isidentifier() else _Column(entry["column"])
    )


class _Column(Expression):
    """A column whose name is not an identifier (Galaxy Zoo's `smooth-or-featured_smooth`): read as it is."""

    def __init__(self, column: str):
        self.text, self.columns = column, [column]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(columns[self.text], dtype=np.float64)


def classification_columns(entry: Mapping[str, Any]) -> list[str]:
    if "column" in entry:
        return [entry["column"]]
    return [*entry["answers"], *([entry["min_votes"]["column"]] if "min_votes" in entry else [])]


def needed_columns(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Catalogue -> the columns the configured labels read (and the coordinates a sky match takes from it).
    Refuses references to catalogues that are not configured and expressions that do not parse."""
    catalogues = config.get("catalogues", {})
    needed: dict[str, list[str]] = {}

    def need(catalogue: str, where: str, columns: list[str]) -> None:
        if catalogue not in catalogues:
            raise UserError(
                f"{where}: catalogue {catalogue!r} is not in catalogues ({', '.join(catalogues) or 'none configured'})"
            )
        needed.setdefault(catalogue, [])
        needed[catalogue] += [c for c in columns if c not in needed[catalogue]]

    for name, entry in config.get("properties", {}).items():
        need(entry["catalogue"], f"properties.{name}.catalogue", expression(name, entry).columns)
    for name, entry in config.get("classifications", {}).items():
        need(entry["catalogue"], f"classifications.{name}.catalogue", classification_columns(entry))
    for name in list(needed):
        match = catalogues[name].get("match")
        if match:
            source = match["coordinates"]
            if "key" not in catalogues.get(source, {}):
                raise UserError(f"catalogues.{name}.match.coordinates: {source!r} must be a catalogue joined by key")
            need(source, f"catalogues.{name}.match.coordinates", match.get("coordinates_columns", COORDINATES))
    return needed


def property_values(name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """float64 per survey row; NaN where the galaxy is not in the catalogue, the value is not finite or outside the
    property's `valid` range."""
    values = expression(name, entry).evaluate(columns)
    valid = entry.get("valid", {})
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(values) & (values >= valid.get("min", -np.inf)) & (values <= valid.get("max", np.inf))
    values = np.where(keep, values, np.nan)
    if not keep.any():
        raise UserError(
            f"properties.{name}: no finite value of {entry.get('column') or entry.get('expression')!r} "
            f"in catalogue {entry['catalogue']} for the matched rows"
        )
    return values


def class_labels(name: str, entry: Mapping[str, Any], columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """A class name per survey row (None where there is none): the categorical column, or the answer with the
    largest fraction among rows with at least `min_votes` votes."""
    if "column" in entry:
        raw = columns[entry["column"]]
        labels = np.array([None if _missing(v) else str(v) for v in raw], dtype=object)
    else:
        fractions = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in entry["answers"]])
        names = answer_names(entry["answers"])
        known = np.isfinite(fractions).any(axis=1)
        if "min_votes" in entry:
            votes = np.asarray(columns[entry["min_votes"]["column"]], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                known &= votes >= entry["min_votes"]["value"]
        best = np.argmax(np.nan_to_num(fractions, nan=-np.inf), axis=1)
        labels = np.array([names[b] if k else None for b, k in zip(best, known)], dtype=object)
    if all(label is None for label in labels):
        raise UserError(f"classifications.{name}: no matched row of catalogue {entry['catalogue']} has a class")
    return labels


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


def label_table(config: Mapping[str, Any], columns: Mapping[str, Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """One row per survey row of the split: `row`, then each property and each classification."""
    n = len(next(iter(next(iter(columns.values())).values())))
    table = {"row": np.arange(n)}
    for name, entry in config.get("properties", {}).items():
        table[name] = property_values(name, entry, columns[entry["catalogue"]])
    for name, entry in config.get("classifications", {}).items():
        table[name] = class_labels(name, entry, columns[entry["catalogue"]])
    return pd.DataFrame(table)
