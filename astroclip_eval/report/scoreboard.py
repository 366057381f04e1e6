"""One results file per model and task kind, and the scoreboard built from them.

A results file (`{results_dir}/{model}/results/{kind}.json`, schema `workflow/schemas/results.schema.yaml`) holds
what a leaderboard needs to trust a number: the kind's tables, its main scores (per label and query modality, the
best protocol's, with the 95% bootstrap interval), the checkpoint's sha256, the data file's name, size and rows,
the package's version, the validated config's hash and the seconds the step took. The scoreboard stacks every
file's main scores; two models' best scores on the same rows are compared by a paired bootstrap on their
per-galaxy predictions, so the overview can say whether a difference is resolved.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from astroclip_eval.io.config import first_error
from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.kinds import Kind, Main, Table

SCHEMA_VERSION = 2  # 2: the dataset names its validation targetids' sha256
BOARD_COLUMNS = ["model", "embedding_dim", "table", "score", "title", "label", "query", "protocol", "target", "value",
                 "lo", "hi", "baseline"]


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the validated config (keys sorted), naming the settings a number was measured with."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def best_rows(main: Main, frame: pd.DataFrame) -> pd.DataFrame:
    """One model's rows for a main score: per label and query modality, the best row over the rest (protocol,
    target) by the score's sense."""
    groups = [c for c in (main.label, main.query) if c]
    frame = frame[main.rows(frame)] if main.rows else frame
    ranked = frame.assign(_order=-main.goodness(frame[main.score]).to_numpy()).sort_values("_order", kind="stable")
    return ranked.drop_duplicates(groups).drop(columns="_order").sort_index()


def _number(value: Any) -> float | None:
    """A value for a results file: a float, or None (null) where there is none (NaN: a score without an interval)."""
    return None if value is None or pd.isna(value) else float(value)


def main_scores(table: Table, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's main scores for one model (its rows as `best_rows` picks them)."""
    scores = []
    for main in table.main:
        for row in best_rows(main, frame).to_dict("records"):
            scores.append({
                "table": table.name, "score": main.key, "title": main.title,
                "label": str(row[main.label]) if main.label else "", "query": row[main.query],
                "protocol": row.get("protocol", ""), "target": row.get("target", ""),
                "value": float(row[main.score]),
                "lo": _number(row.get(f"{main.score}_lo")), "hi": _number(row.get(f"{main.score}_hi")),
                "baseline": float(row[main.baseline]) if main.baseline else None,
            })
    return scores


def record(model: str, kind: Kind, frames: dict[str, pd.DataFrame], checkpoint: Mapping[str, Any], dataset: str | Path,
           targetids: str, valid_summary: Mapping[str, Any], config: Mapping[str, Any],
           seconds: float | None) -> dict[str, Any]:
    """The results file of one model and task kind (`frames`: the kind's tables of this model, by name;
    `targetids`: the sha256 of the validation split's targetids as embedded)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "task": kind.name,
        "checkpoint": {k: checkpoint.get(k) for k in ("sha256", "source", "architecture", "epoch")},
        "dataset": {"name": Path(dataset).name, "bytes": Path(dataset).stat().st_size, "targetids_sha256": targetids,
                    "validation_rows": int(valid_summary["n_rows"]), "valid_rows": int(valid_summary["n_valid"])},
        "harness": {"package": "astroclip-eval", "version": importlib.metadata.version("astroclip-eval"),
                    "config_sha256": config_hash(config)},
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": seconds,
        "main": [s for t in kind.tables for s in main_scores(t, frames[t.name])],
        "tables": {name: {"columns": list(frame.columns),
                          "rows": frame.astype(object).where(frame.notna(), None).to_numpy().tolist()}
                   for name, frame in frames.items()},  # columns in their order (the file's keys are sorted); NaN null
    }


def stale(results: Mapping[str, Any], config: Mapping[str, Any], checkpoint: Mapping[str, Any],
          dataset_bytes: int, targetids: str) -> str | None:
    """What makes a results file not this run's, or None: written under another config, from another checkpoint or
    on another data file, by its size or its validation split's targetids (`targetids`: their sha256 in the run's
    data file): a file left in a model's results/ from an earlier run, or copied from elsewhere."""
    if results["harness"]["config_sha256"] != config_hash(config):
        return f"written under another config (config_sha256 {results['harness']['config_sha256'][:12]}, this run's " \
               f"{config_hash(config)[:12]})"
    if results["checkpoint"]["sha256"] != checkpoint.get("sha256"):
        return f"measured on checkpoint {str(results['checkpoint']['sha256'])[:12]}, not the promoted " \
               f"{str(checkpoint.get('sha256'))[:12]}"
    if results["dataset"]["bytes"] != dataset_bytes:
        return f"measured on a data file of {results['dataset']['bytes']:,} bytes, not this run's {dataset_bytes:,}"
    if results["dataset"]["targetids_sha256"] != targetids:
        return "measured on other galaxies than the validation split of this run's data file (their targetids differ)"
    return None


def _not_finite(value: Any, where: str = "") -> str | None:
    """Where the first number that is not finite is (JSON has no NaN: a score must be a number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the top level"
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    return next((w for k, v in items if (w := _not_finite(v, f"{where}/{k}".lstrip("/")))), None)


def validate(results: Mapping[str, Any], schema_path: str | Path) -> None:
    """Raise ValueError naming the first place where a results file departs from its schema, or holds a number
    that is not finite."""
    where = _not_finite(results)
    if where:
        raise ValueError(f"results of {results.get('model')}/{results.get('task')}: at {where}: not a finite number")
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = first_error(jsonschema.Draft202012Validator(schema), results)
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "the top level"
        raise ValueError(f"results of {results.get('model')}/{results.get('task')}: at {where}: {error.message}")


def table_frame(results: Mapping[str, Any], name: str) -> pd.DataFrame:
    """One of a results file's tables, its columns in their order."""
    table = results["tables"][name]
    frame = pd.DataFrame(table["rows"], columns=table["columns"])
    empty = [c for c in frame.columns if frame[c].isna().all()]  # a column of nulls reads as NaN, as its CSV did
    return frame.astype({c: float for c in empty})


def board(records: list[Mapping[str, Any]], dims: Mapping[str, int]) -> pd.DataFrame:
    """The scoreboard: every results file's main scores, a row per model and score, models by dimension."""
    rows = [{"model": r["model"], "embedding_dim": dims[r["model"]], **s} for r in records for s in r["main"]]
    out = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    return out.sort_values(["embedding_dim", "model"], kind="stable").reset_index(drop=True)


def compare(main: Main, first: pd.Series, second: pd.Series, predictions: Mapping[str, pd.DataFrame],
            draws: int = bootstrap.DRAWS) -> dict[str, Any] | None:
    """The paired bootstrap of a main score between two board rows (first minus second), on the galaxies both
    scored (`n`; two models score the same rows, a baseline those of them that have its features), from their
    predictions files; None when the score has no per-galaxy form or no galaxy is shared."""
    score = getattr(bootstrap, main.score, None)
    if score is None or main.ideal is not None:
        return None
    picked = []
    for row in (first, second):
        p = predictions[row["model"]]
        p = p[(p["protocol"] == row["protocol"]) & (p["query"] == row["query"]) & (p["target"] == row["target"])]
        if row["label"]:
            p = p[p["label"].astype(str) == row["label"]]
        picked.append(p)
    shared = np.intersect1d(picked[0]["row"].to_numpy(), picked[1]["row"].to_numpy())
    if not shared.size:
        return None
    picked = [p[p["row"].isin(shared)].sort_values("row") for p in picked]
    arrays = [(p["true"].to_numpy(), p["predicted"].to_numpy()) for p in picked]
    if arrays[0][0].dtype == object:  # class names: one code per name either predictor uses
        names = np.unique(np.concatenate([a for pair in arrays for a in pair]).astype(str))
        arrays = [tuple(np.searchsorted(names, a.astype(str)) for a in pair) for pair in arrays]
    return {**bootstrap.paired(score, arrays[0], arrays[1], draws), "n": int(shared.size)}


AGAINST_COLUMNS = ["table", "score", "label", "model", "query", "protocol", "target", "value", "baseline",
                   "baseline_protocol", "baseline_value", "n", "difference", "lo", "hi", "resolved"]


def against_baselines(table: Table, scores: pd.DataFrame, baselines: pd.DataFrame,
                      predictions: Mapping[str, pd.DataFrame], draws: int = bootstrap.DRAWS) -> list[dict[str, Any]]:
    """Per main score, label, model and query modality: the model's best row against each baseline's best row
    (`baselines`: the baselines' board rows), model minus baseline, by the paired bootstrap on the galaxies both
    scored, the two cells of the scoreboard set side by side. `predictions`: every model's and baseline's
    predictions of this table."""
    out = []
    for main in table.main:
        mine = scores[(scores["table"] == table.name) & (scores["score"] == main.key)]
        theirs = baselines[(baselines["table"] == table.name) & (baselines["score"] == main.key)]
        for _, base in theirs.iterrows():
            for _, row in mine[mine["label"] == base["label"]].iterrows():
                found = compare(main, row, base, predictions, draws) or {}
                out.append({"table": table.name, "score": main.key, "label": row["label"], "model": row["model"],
                            "query": row["query"], "protocol": row["protocol"], "target": row["target"],
                            "value": row["value"], "baseline": base["model"], "baseline_protocol": base["protocol"],
                            "baseline_value": base["value"], **found})
    return out


def comparisons(table: Table, frame: pd.DataFrame, predictions: Mapping[str, pd.DataFrame],
                draws: int = bootstrap.DRAWS) -> list[dict[str, Any]]:
    """Per main score, label and query modality with at least two models: the best model against the next."""
    out = []
    for main in table.main:
        rows = frame[(frame["table"] == table.name) & (frame["score"] == main.key)]
        for (label, query), group in rows.groupby(["label", "query"], sort=False):
            if len(group) < 2:
                continue
            order = -main.goodness(group["value"])
            best, runner_up = (group.loc[i] for i in order.sort_values(kind="stable").index[:2])
            found = compare(main, best, runner_up, predictions, draws) if predictions else None
            out.append({"table": table.name, "score": main.key, "label": label, "query": query,
                        "best": best["model"], "next": runner_up["model"], **(found or {})})
    return out
