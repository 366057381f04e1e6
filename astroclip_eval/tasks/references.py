"""Published figures, bounds and baselines named in the config, set beside this run's scores with a verdict.

- published (`{value, protocol, modality, neighbours}`): a figure measured by one protocol on this label's
  definition (a published AstroCLIP figure), read only against each model's score of the same label, protocol,
  in-modal pair and k: "within" when the score's 95% interval holds it, else "above" or "below" (the score against
  the figure);
- bound (a bare number): what the data allow by any method, read against each model's score whose interval has the
  highest lower end (any protocol and pair): "exceeded" when that whole interval lies above it, else "holds";
- baseline (`{value, kind: baseline}`): another method's score on this label (a template fit, a supervised model),
  read against each model's best score as a published figure is.

Beside a question's accuracy stands what always answering its most common class scores on the same rows
(`majority`): a score near it learnt nothing, whatever reference it is read against.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from astroclip_eval.io.plan import Protocols, base_protocol, protocol_k
from astroclip_eval.tasks.kinds import enabled

COLUMNS = ["label", "reference", "kind", "value", "metric", "protocol", "modality", "k", "model", "measured_by",
           "score", "score_lo", "score_hi", "verdict", "majority"]


def kind_of(reference: Any) -> str:
    """published, bound or baseline: how a configured reference is read."""
    if not isinstance(reference, dict):
        return "bound"
    return reference.get("kind", "published")


def verdict(kind: str, value: float, lo: float, hi: float) -> str:
    """A bound "holds" unless the score's whole interval lies above it ("exceeded"); a figure is "within" the
    score's interval, or the score is "above" or "below" it."""
    if kind == "bound":
        return "exceeded" if lo > value else "holds"
    return "within" if lo <= value <= hi else "above" if lo > value else "below"


def _row(label: str, name: str, ref: Any, metric: str, model: str, found: pd.Series | None,
         reason: str = "") -> dict[str, Any]:
    kind = kind_of(ref)
    value = ref["value"] if isinstance(ref, dict) else ref
    out = {"label": label, "reference": name, "kind": kind, "value": float(value), "metric": metric,
           "protocol": ref.get("protocol", "") if kind == "published" else "",
           "modality": ref.get("modality", "") if kind == "published" else "",
           "k": ref.get("neighbours") if kind == "published" else None, "model": model}
    if found is None:
        return {**out, "measured_by": "", "score": math.nan, "score_lo": math.nan, "score_hi": math.nan,
                "verdict": f"not measured: {reason}", "majority": math.nan}
    lo, hi = float(found[f"{metric}_lo"]), float(found[f"{metric}_hi"])
    return {**out, "measured_by": f"{found['protocol']}, {found['query']} -> {found['target']}",
            "score": float(found[metric]), "score_lo": lo, "score_hi": hi, "verdict": verdict(kind, value, lo, hi),
            "majority": float(found.get("majority", math.nan))}  # a classifier's score beside what guessing gets


def _like_for_like(ref: dict, mine: pd.DataFrame, protocols: Protocols) -> tuple[pd.Series | None, str]:
    """A model's row measured as a published figure was (protocol, in-modal pair, k), or why there is none."""
    protocol, modality, k = ref["protocol"], ref["modality"], ref.get("neighbours")
    same = mine[(mine["protocol"].map(base_protocol) == protocol) & (mine["query"] == modality)
                & (mine["target"] == modality)]
    if not len(same):
        return None, f"this run has no {protocol} score"
    ks = same["protocol"].map(lambda p: protocol_k(p, protocols))
    match = same[ks == k] if k is not None else same[ks.isna()]
    if len(match):
        return match.iloc[0], ""
    if k is None:
        return None, f"the reference names no k; this run's {protocol} uses k = {', '.join(map(str, ks))}"
    return None, f"this run's {protocol} uses k = {', '.join(map(str, ks))}"


def reference_table(config: dict[str, Any], section: str, table: pd.DataFrame, key: str, metric: str) -> pd.DataFrame:
    """A row per configured reference of a section's labels and per model of the stacked `table`."""
    rows = []
    models = list(dict.fromkeys(table["model"]))
    protocols = Protocols.of(config["protocols"])
    for label, entry in config[section].items():
        for name, ref in entry.get("references", {}).items():
            for model in models:
                mine = table[(table["model"] == model) & (table[key].astype(str) == label)]
                if kind_of(ref) == "published":
                    found, reason = _like_for_like(ref, mine, protocols)
                elif not len(mine):
                    found, reason = None, "no score of this label"
                else:  # the strongest claim against a bound; the best score against a baseline
                    order = f"{metric}_lo" if kind_of(ref) == "bound" else metric
                    found, reason = mine.loc[mine[order].idxmax()], ""
                rows.append(_row(label, name, ref, metric, model, found, reason))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"k": "Int64"})  # 16, not 16.0, beside rows without a k


def all_references(config: dict[str, Any], frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every running table's references (the kinds' `references`), from the tables stacked across models."""
    parts = [reference_table(config, t.references[0], frames[t.name], *t.references[1:])
             for kind in enabled(config) for t in kind.tables if t.references and t.name in frames]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def how_measured(row: pd.Series | dict) -> str:
    """How a reference was measured, in a few words: 'zero_shot, k = 16', 'a bound', 'another method'."""
    if row["kind"] == "bound":
        return "a bound"
    if row["kind"] == "baseline":
        return "another method"
    k = row["k"]
    return f"{row['protocol']}" + (f", k = {int(k)}" if k is not None and not pd.isna(k) else "")
