"""The report's landing page: what was run, on what, with which software, and the results across models first.

One self-contained HTML file (inline style, figure embedded as a data URI, no script), so it opens offline and
inside the Snakemake report's frame alike; the page is `templates/overview.html.j2`, filled here.
"""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from astroclip_eval.models import REGISTRY
from astroclip_eval.tasks.downstream import MODALITIES, PAIRS

PACKAGES = (
    "astroclip-eval",
    "snakemake",
    "torch",
    "pytorch-lightning",
    "numpy",
    "h5py",
    "matplotlib",
    "papermill",
)
REASONS = {
    "zero_spectrum": "spectrum all zero",
    "nonfinite_spectrum": "spectrum with NaN or inf",
    "redshift_out_of_range": "redshift outside the range",
}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #111; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { border: 1px solid #bbb; padding: 0.2rem 0.6rem; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: min(100%, 40rem); } .note { color: #444; font-size: 0.9rem; }
"""


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the numbers."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _or_na(value: Any, fmt: str = "{}") -> str:
    """A promotion record's epoch or score; a checkpoint from outside Lightning may have neither."""
    return "n/a" if value is None else fmt.format(value)


TEMPLATE = jinja2.Environment(
    loader=jinja2.PackageLoader("astroclip_eval", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
).get_template("overview.html.j2")
ARCHITECTURES = {model.name: model.label for model in REGISTRY}  # as promotion recorded them


def _devices(shards: list[dict[str, Any]]) -> str:
    """Where a model's validation shards were embedded, e.g. 'cuda:0 (NVIDIA H100): 4 shards'."""
    counts = Counter(s["device"] for s in shards)
    return "; ".join(f"{d}: {n} shard{'s' if n > 1 else ''}" for d, n in counts.items())


def _references(entries: dict[str, Any], table: pd.DataFrame | None, key: str, score: str,
                redshift: dict[str, Any]) -> list[list[str]]:
    """A row per configured reference: the label, the reference's name and value, what it was measured on, and
    this run's scores beside it. A bare number is a bound on this label (a ceiling), read against the best in-modal
    score per modality; a reference that names its protocol and modality is read only against this run's score of
    the same protocol, modality and k, per model, and says so when this run has none."""
    rows = []
    for name, entry in entries.items():
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


SETTINGS = ("dataset", "valid", "redshift", "similarity", "explorer", "embedding")  # the config sections listed


def _settings(config: dict[str, Any], schema: dict[str, Any]) -> list[list[str]]:
    """One row per setting of the listed sections: its key, the value this run used (defaults filled in), and what
    it means, in the schema's own words."""
    rows = []
    for section in SETTINGS:
        described = schema.get("properties", {}).get(section, {}).get("properties", {})
        for key, value in config.get(section, {}).items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append([f"{section}.{key}", shown, described.get(key, {}).get("description", "")])
    return rows


def render(
    config: dict[str, Any],
    valid_summary: dict[str, Any],
    summary: pd.DataFrame,
    retrieval: pd.DataFrame,
    checkpoints: dict[str, dict[str, Any]],
    embedded: dict[str, dict[str, Any]],
    figure: str | Path,
    software: dict[str, str],
    metrics: pd.DataFrame | None = None,
    properties: pd.DataFrame | None = None,
    classification: pd.DataFrame | None = None,
    joins: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> str:
    """The landing page. `summary` is the across-model R^2 table (model, embedding_dim, query, target, r2);
    `retrieval` the across-model retrieval table (model, embedding_dim, query, target, n, top1, top10, median_rank);
    `checkpoints` maps model -> its promotion record (source, epoch, monitor, score); `embedded` maps model -> its
    embedding record (dim, and each shard's rows and device). `metrics` (redshift bias, sigma_NMAD, outliers),
    `properties`, `classification` (across-model tables) and `joins` (the validation split's join counts) add their
    sections when given; `schema` (the config schema) gives each setting's meaning."""
    n, n_valid = valid_summary["n_rows"], valid_summary["n_valid"]
    z_min, z_max = valid_summary["z_min"], valid_summary["z_max"]
    reasons = [[REASONS.get(r, r) + (f" [{z_min}, {z_max}]" if r == "redshift_out_of_range" else ""), c]
               for r, c in valid_summary["invalid_by_reason"].items()]
    dims = summary.drop_duplicates("model").set_index("model")["embedding_dim"]
    models = [
        [m, ARCHITECTURES.get(checkpoints[m].get("architecture"), "loader plug-in"), int(dims[m]), checkpoints[m]["source"],
         _or_na(checkpoints[m]["epoch"]), _or_na(checkpoints[m]["score"], "{:.4f}"), _devices(embedded[m]["shards"])]
        for m in dims.index
    ]
    pairs = PAIRS
    r2 = summary.set_index(["model", "protocol", "query", "target"])["r2"]
    keys = list(dict.fromkeys(zip(summary["model"], summary["protocol"])))
    r2_rows = [[m, int(dims[m]), p, *[f"{r2[(m, p, q, t)]:.3f}" for q, t in pairs]] for m, p in keys]
    r2_attrs = [{"model": m, "protocol": p, **{f"{q}-{t}": repr(float(r2[(m, p, q, t)])) for q, t in pairs}} for m, p in keys]
    retrieval_rows = [[r.model, int(r.embedding_dim), f"{r.query} -> own {r.target}", f"{r.n:,}", f"{r.top1:.3f}",
                       f"{r.top10:.3f}", f"{r.median_rank:g}"] for r in retrieval.itertuples()]
    settings = _settings(config, schema or {})
    metric_rows = [[r.model, int(r.embedding_dim), r.protocol, f"{r.query} -> {r.target}", f"{r.bias:+.4f}",
                    f"{r.sigma_nmad:.4f}", f"{r.outlier_fraction:.3f}"]
                   for r in (metrics if metrics is not None else pd.DataFrame()).itertuples()]
    property_rows, class_rows, join_rows, reference_rows = [], [], [], []
    if properties is not None:
        table = properties.set_index(["model", "protocol", "property", "query", "target"])
        keys = list(dict.fromkeys(zip(properties["model"], properties["protocol"], properties["property"])))
        property_rows = [[m, int(dims[m]), p, name, f"{table.loc[(m, p, name, pairs[0][0], pairs[0][1]), 'n']:,}",
                          *[f"{table.loc[(m, p, name, q, t), 'r2']:.3f}" for q, t in pairs]] for m, p, name in keys]
    if classification is not None:
        class_rows = [[r.model, int(r.embedding_dim), r.protocol, r.question, f"{r.query} -> {r.target}", f"{r.n:,}",
                       f"{r.accuracy:.3f}", f"{r.f1_weighted:.3f}", f"{r.majority:.3f}"] for r in classification.itertuples()]
    if properties is not None:
        reference_rows += _references(config["properties"], properties, "property", "r2", config["redshift"])
    if classification is not None:
        reference_rows += _references(config["classifications"], classification, "question", "accuracy",
                                      config["redshift"])
    if joins is not None:
        join_rows = [[name, c["method"], f"{c['rows']:,}", f"{c['matched']:,}", f"{c['unmatched']:,}", f"{c['duplicates']:,}"]
                     for name, c in joins["joins"].items()]
        join_rows += [[f"label {name}", "valid rows with a value", "", f"{count:,}", "", ""]
                      for name, count in joins["labelled"].items()]
    return TEMPLATE.render(
        metric_rows=metric_rows,
        property_header=["model", "embedding dim", "protocol", "property", "n", *[f"{q} -> {t}" for q, t in pairs]],
        property_rows=property_rows,
        class_rows=class_rows,
        join_rows=join_rows,
        reference_rows=reference_rows,
        style=STYLE,
        written=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        image=base64.b64encode(Path(figure).read_bytes()).decode(),
        r2_header=["model", "embedding dim", "protocol", *[f"{q} -> {t}" for q, t in pairs]],
        r2_rows=r2_rows,
        r2_attrs=r2_attrs,
        n=n,
        n_valid=n_valid,
        reasons=reasons,
        selection=valid_summary.get("selection"),  # recorded since the demo's survey selects by redshift success
        retrieval_rows=retrieval_rows,
        models=models,
        settings=settings,
        software=list(software.items()),
    )
