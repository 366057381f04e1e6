"""The report's landing page: what was run, on what, with which software, and the results across models first.

One self-contained HTML file (inline style, figure embedded as a data URI, no script), so it opens offline and
inside the Snakemake report's frame alike.
"""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from .redshift import MODALITIES

PACKAGES = ("astroclip-eval", "snakemake", "torch", "pytorch-lightning", "numpy", "h5py", "scikit-learn", "matplotlib", "papermill")
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


ARCHITECTURES = {
    "released": "original AstroCLIP, released (ViT + SpecFormer)",
    "reproduction": "reproduction (ResNet-50 + spender)",
    "reference": "this project's reference model",
}


def _devices(shards: list[dict[str, Any]]) -> str:
    """Where a model's validation shards were embedded, e.g. 'cuda:0 (NVIDIA H100): 4 shards'."""
    counts = Counter(s["device"] for s in shards)
    return "; ".join(f"{d}: {n} shard{'s' if n > 1 else ''}" for d, n in counts.items())


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset(), attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{html.escape(str(v))}</td>' if j in numeric else f"<td>{html.escape(str(v))}</td>"
            for j, v in enumerate(row)
        )
        body.append(f"<tr{attrs[i] if attrs else ''}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(
    config: dict[str, Any],
    valid_summary: dict[str, Any],
    summary: pd.DataFrame,
    checkpoints: dict[str, dict[str, Any]],
    embedded: dict[str, dict[str, Any]],
    figure: str | Path,
    software: dict[str, str],
) -> str:
    """The landing page. `summary` is the across-model R^2 table (model, embedding_dim, query, target, r2);
    `checkpoints` maps model -> its promotion record (source, epoch, monitor, score); `embedded` maps model -> its
    embedding record (dim, and each shard's rows and device)."""
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
    pairs = [(q, t) for q in MODALITIES for t in MODALITIES]
    r2 = summary.set_index(["model", "protocol", "query", "target"])["r2"]
    keys = list(dict.fromkeys(zip(summary["model"], summary["protocol"])))
    r2_rows = [[m, int(dims[m]), p, *[f"{r2[(m, p, q, t)]:.3f}" for q, t in pairs]] for m, p in keys]
    r2_attrs = [
        f' data-model="{html.escape(m)}" data-protocol="{p}" '
        + " ".join(f'data-{q}-{t}="{float(r2[(m, p, q, t)])!r}"' for q, t in pairs)
        for m, p in keys
    ]
    settings = [
        ["dataset", config["dataset"]["path"]],
        ["valid rows", f"redshift in [{z_min}, {z_max}], spectrum finite and not all zero"],
        ["redshift protocols", ", ".join(config["redshift"]["protocols"])
                               + f" (zero_shot k = {config['redshift']['zero_shot_neighbours']})"],
        ["kNN redshift", f"k = {config['redshift']['n_neighbours']}, mean of neighbours' redshifts by cosine similarity, "
                         f"{'query left out of its own in-modal neighbours' if config['redshift']['exclude_self'] else 'query kept among its own neighbours (as the seed notebook)'}"],
        ["similarity search", f"queries {config['similarity']['query_indices']}, top {config['similarity']['top_k']} per mode, "
                              f"candidates: {config['similarity']['rows']} rows, "
                              f"{'query left out of its own in-modal matches' if config['similarity']['exclude_self'] else 'query kept as its own first in-modal match (as the seed notebook)'}"],
        ["embedding", f"batch {config['embedding']['batch_size']}, {config['embedding']['shards']} shard(s), "
                      f"precision {config['embedding']['precision']}, device {config['embedding']['device']}"],
    ]
    image = base64.b64encode(Path(figure).read_bytes()).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AstroCLIP evaluation: overview</title><style>{STYLE}</style></head>
<body>
<h1>AstroCLIP evaluation: overview</h1>
<p class="note">Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}. Every model's figures, tables and
executed notebooks are under its own category in the report.</p>
<h2>Results across models</h2>
<img id="summary-figure" alt="kNN redshift R^2 against embedding dimension" src="data:image/png;base64,{image}">
<p class="note">Redshift R^2 on the valid validation rows (1 is perfect; 0 is no better than the mean redshift).
Protocols: <em>reproduction</em>, the mean redshift of the k nearest validation galaxies; <em>zero_shot</em>, the
AstroCLIP paper's distance-weighted kNN on standardised embeddings fitted on the train split; <em>few_shot</em>, an MLP
trained on the train split. Columns are query modality -&gt; neighbour (or training) modality: "spectrum -&gt; image"
means each galaxy's spectrum embedding was compared with image embeddings.</p>
{_table(["model", "embedding dim", "protocol", *[f"{q} -> {t}" for q, t in pairs]], r2_rows, numeric={1, 3, 4, 5, 6}, attrs=r2_attrs)}
<h2>Data</h2>
<p>{n:,} validation rows, <strong>{n_valid:,} valid</strong>, {n - n_valid:,} left out (a row may fail for
several reasons):</p>
{_table(["reason", "rows"], reasons, numeric={1})}
<h2>Models</h2>
{_table(["model", "architecture", "embedding dim", "promoted checkpoint", "epoch", "val/loss", "embedded on"], models, numeric={2, 4, 5})}
<h2>Settings</h2>
{_table(["step", "setting"], settings)}
<h2>Software</h2>
{_table(["package", "version"], [[k, v] for k, v in software.items()])}
</body></html>
"""
