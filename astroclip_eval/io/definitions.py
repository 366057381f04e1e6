"""Label definitions as the config gives them: which catalogue columns each property, question, row filter and
baseline reads, parsed and checked before any file is read (the config check runs them, so a bad reference or
expression stops a dry run in one line). tasks/labels.py reads the values."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.expressions import Condition, Expression

COORDINATES = ["RA", "DEC"]  # default columns of the catalogue that gives a sky match its coordinates


def expression(name: str, entry: Mapping[str, Any]) -> Expression:
    """A property's value as an expression (a plain column is the expression of one name)."""
    if "expression" in entry:
        return Expression(entry["expression"], f"properties.{name}.expression")
    column = entry["column"]
    plain = column.isidentifier() and unicodedata.normalize("NFKC", column) == column  # as Python would read it
    return Expression(column, f"properties.{name}.column") if plain else _Column(column)


class _Column(Expression):
    """A column whose name is not an identifier (Galaxy Zoo's `smooth-or-featured_smooth`): read as it is."""

    def __init__(self, column: str):
        self.text, self.columns = column, [column]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(columns[self.text], dtype=np.float64)


def conditions(name: str, entry: Mapping[str, Any]) -> list[Condition]:
    """A catalogue's row filter, one checked condition per item of its `where` list."""
    return [Condition(text, f"catalogues.{name}.where[{i}]") for i, text in enumerate(entry.get("where", []))]


def classification_columns(entry: Mapping[str, Any]) -> list[str]:
    if "column" in entry:
        return [entry["column"]]
    counts = [entry[key]["column"] for key in ("min_votes", "min_answers") if key in entry]
    return list(dict.fromkeys([*entry["answers"], *counts]))


def require_answers(name: str, entry: Mapping[str, Any]) -> None:
    """A question trained on its vote fractions or cut by its answers needs answer columns, not a class column."""
    for key in ("vote_fractions", "min_answers"):
        if entry.get(key) and "answers" not in entry:
            raise UserError(f"classifications.{name}.{key}: needs the question's answers (vote fraction columns), "
                            f"not a class column")


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
        require_answers(name, entry)
        need(entry["catalogue"], f"classifications.{name}.catalogue", classification_columns(entry))
    for name, entry in config.get("baselines", {}).items():
        need(entry["catalogue"], f"baselines.{name}.catalogue", entry["columns"])
    for name in list(needed):
        need(name, f"catalogues.{name}.where", [c for cond in conditions(name, catalogues[name]) for c in cond.columns])
    for name in list(needed):
        match = catalogues[name].get("match")
        if match:
            source = match["coordinates"]
            if "key" not in catalogues.get(source, {}):
                raise UserError(f"catalogues.{name}.match.coordinates: {source!r} must be a catalogue joined by key")
            need(source, f"catalogues.{name}.match.coordinates", match.get("coordinates_columns", COORDINATES))
    return needed


def label_columns(config: Mapping[str, Any], catalogue: str) -> list[str]:
    """The columns of one catalogue that its labels and its filter read (not the coordinates it lends a sky match)."""
    out = [c for cond in conditions(catalogue, config["catalogues"][catalogue]) for c in cond.columns]
    for name, entry in config.get("properties", {}).items():
        if entry["catalogue"] == catalogue:
            out += expression(name, entry).columns
    for entry in config.get("classifications", {}).values():
        if entry["catalogue"] == catalogue:
            out += classification_columns(entry)
    return list(dict.fromkeys(out))


def declared_ranges(config: Mapping[str, Any], catalogue: str) -> dict[str, Mapping]:
    """Column -> the `range` of a property that is that column as it is (LOG_MSTAR: {min: 0})."""
    return {
        entry["column"]: entry["range"]
        for entry in config.get("properties", {}).values()
        if entry["catalogue"] == catalogue and "column" in entry and "range" in entry
    }
