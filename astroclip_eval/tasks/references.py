"""Published figures and bounds named in the config beside this run's scores: a figure is read only against a score
measured with the same label, protocol, modality and k; a bound against this run's best in-modal score."""

from __future__ import annotations

from typing import Any

import pandas as pd

from astroclip_eval.tasks.downstream import MODALITIES


def reference_rows(config: dict[str, Any], section: str, table: pd.DataFrame, key: str, score: str) -> list[list[str]]:
    """A row per configured reference: the label, the reference's name and value, what it was measured on, and
    this run's scores beside it. A bare number is a bound on this label (a ceiling), read against the best in-modal
    score per modality; a reference that names its protocol and modality is read only against this run's score of
    the same protocol, modality and k, per model, and says so when this run has none."""
    redshift, rows = config["redshift"], []  # the kNN protocols' k, which a published figure must share
    for name, entry in config[section].items():
        for reference, ref in entry.get("references", {}).items():
            if not isinstance(ref, dict):
                rows.append([name, reference, f"{ref:g}", "a bound on this label (any protocol)", _best(table, key, name, score)])
                continue
            protocol, modality = ref["protocol"], ref["modality"]
            k = {"zero_shot": redshift["zero_shot_neighbours"], "reproduction": redshift["n_neighbours"]}.get(protocol)
            measured = f"{protocol}, {modality} -> {modality}" + (f", k = {ref['neighbours']}" if "neighbours" in ref else "")
            mine = table[(table[key] == name) & (table["protocol"] == protocol) & (table["query"] == modality)
                         & (table["target"] == modality)]
            if "neighbours" in ref and k is not None and ref["neighbours"] != k:
                here = f"not measured: this run's {protocol} uses k = {k}"
            elif not len(mine):
                here = f"not measured: this run has no {protocol} score"
            else:
                here = "; ".join(f"{r['model']} {r[score]:.3f}" for _, r in mine.iterrows())
            rows.append([name, reference, f"{ref['value']:g}", measured, here])
    return rows


def _best(table: pd.DataFrame, key: str, name: str, score: str) -> str:
    """This run's best in-modal score per modality for one label, with the model and protocol that reached it."""
    best = []
    for modality in MODALITIES:
        mine = table[(table[key] == name) & (table["query"] == modality) & (table["target"] == modality)]
        if len(mine):
            top = mine.loc[mine[score].idxmax()]
            best.append(f"{modality} {top[score]:.3f} ({top['model']}, {top['protocol']})")
    return "; ".join(best)
