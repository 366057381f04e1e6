"""The report's landing page: what was run, on what, with which software, and the results across models first.

One self-contained HTML file (inline style, figure embedded as a data URI, no script), so it opens offline and
inside the Snakemake report's frame alike; the page is `templates/overview.html.j2`, filled here.
"""

from __future__ import annotations

import base64
import datetime
import importlib
import importlib.metadata
import io
import platform
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup
from PIL import Image

from astroclip_eval.io.config import described
from astroclip_eval.models import REGISTRY
from astroclip_eval.tasks.baselines import label as baseline_label
from astroclip_eval.tasks.downstream import PAIRS
from astroclip_eval.tasks.kinds import Main, Table, enabled
from astroclip_eval.tasks.references import how_measured

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
img { max-width: 100%; } .note { color: #444; font-size: 0.9rem; }
table.board { font-size: 0.85rem; } h3 { font-size: 0.95rem; margin: 1rem 0 0.2rem; }
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


def _settings(config: dict[str, Any], schema: dict[str, Any]) -> list[list[str]]:
    """One row per setting of the data's sections, each running task kind's and the embedding's: its key, the value
    this run used (defaults filled in), and what it means, in the schema's own words."""
    rows = []
    for section in ("dataset", "row_filter", *[s for kind in enabled(config) for s in kind.settings], "embedding"):
        for key, value in config.get(section, {}).items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append([f"{section}.{key}", shown, described(schema, section, key)])
    return rows


NUMBER = re.compile(r"^[+-]?[0-9][0-9,]*(\.[0-9]+)?(e[+-]?[0-9]+)?( \+- [0-9.e+-]+| \[[0-9.e+-]+, [0-9.e+-]+\])?$")


def _fields(formats: list[str]) -> list[str]:
    """The row columns a list of formats reads, in order, each once."""
    return list(dict.fromkeys(name for f in formats for _, name, _, _ in string.Formatter().parse(f) if name))


def _numeric(rows: list[list[str]]) -> tuple[int, ...]:
    """The columns whose every non-empty cell is a number, right-aligned in the page."""
    width = max((len(r) for r in rows), default=0)
    return tuple(i for i in range(width) if all(NUMBER.match(r[i]) for r in rows if r[i]) and any(r[i] for r in rows))


def _section(title: str, anchor: str, note: str, header: list[str] = (), rows: list = (), numeric: tuple = (),
             attrs: list = (), image: str = "", boards: list = ()) -> dict[str, Any]:
    """One section of the page, as the template reads it."""
    return {"title": title, "anchor": anchor, "note": note, "header": list(header), "rows": list(rows),
            "numeric": numeric, "attrs": list(attrs), "image": image, "boards": list(boards)}


PAGE_PIXELS = 1600  # the widest figure the page embeds: its column is 60rem, so twice that for a sharp screen


def embedded_png(path: str | Path) -> str:
    """A figure as base64 for the page: at most PAGE_PIXELS wide, in 256 colours. The summary's figures are written
    at 200 dpi for print (a four-panel one is 4,000 px wide), and Chromium opens report.html's pages only up to 2 MB;
    a plot loses nothing visible to a palette."""
    with Image.open(path) as opened:
        image = opened.convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    if image.width > PAGE_PIXELS:
        image = image.resize((PAGE_PIXELS, round(image.height * PAGE_PIXELS / image.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def _interval(value: float, lo: float, hi: float) -> str:
    """A score with its 95% interval, as every table of the page shows it: "0.863 [0.851, 0.874]"; a score of the
    whole set of rows, which has none, alone."""
    return f"{value:.3f}" if pd.isna(lo) else f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


class _Shown(string.Formatter):
    """A shown column's format over a row: a missing number (NaN) reads "n/a"."""

    def format_field(self, value: Any, spec: str) -> str:
        return "n/a" if isinstance(value, float) and pd.isna(value) else super().format_field(value, spec)


def _shown(fmt: str, row: dict[str, Any]) -> str:
    """One cell of a shown column; a bounded score without an interval (a measure of the whole set of rows) shows
    the score alone."""
    return _Shown().format(fmt, **row).replace(" [n/a, n/a]", "")


def table_section(table: Table, frame: pd.DataFrame, figure: str | Path | None = None) -> dict[str, Any]:
    """One table across models as the overview shows it: its `shown` columns formatted from each row; with a
    `spread` score, one row per distinct shown values and the score per query -> target pair as columns, each
    row carrying its values as data- attributes (the exact numbers, for a reader's script or a test)."""
    header = [h for h, _ in table.shown]
    formats = [f for _, f in table.shown]
    attrs: list[dict[str, str]] = []
    if frame.empty or not table.listed:
        rows = []
    elif not table.spread:
        rows = [[_shown(f, row) for f in formats] for row in frame.to_dict("records")]
    else:
        keys = _fields(formats)
        indexed = frame.set_index([*keys, "query", "target"])
        scores = indexed[table.spread]
        bounded = {f"{table.spread}_lo", f"{table.spread}_hi"} <= set(frame.columns)

        def cell(key: tuple) -> str:
            if key not in scores.index:
                return ""
            if not bounded:
                return f"{scores[key]:.3f}"
            return _interval(scores[key], indexed.loc[key, f"{table.spread}_lo"], indexed.loc[key, f"{table.spread}_hi"])

        rows = []
        present = [*PAIRS, *[p for p in dict.fromkeys(zip(frame["query"], frame["target"])) if p not in PAIRS]]
        for values in dict.fromkeys(frame[keys].itertuples(index=False, name=None)):
            row = dict(zip(keys, values))
            pairs = {(q, t): scores.get((*values, q, t)) for q, t in present}
            rows.append([f.format(**row) for f in formats] + [cell((*values, q, t)) for q, t in present])
            attrs.append({**{k: str(v) for k, v in row.items()},
                          **{f"{q}-{t}": repr(float(v)) for (q, t), v in pairs.items() if v is not None}})
        header += [f"{q} -> {t}" for q, t in present]
    image = embedded_png(figure) if figure else ""
    header = header if rows else []
    return _section(table.title, table.anchor, Markup(table.note), header, rows, _numeric(rows), attrs, image)


def _shade(values: pd.Series, main: Main, learnt: pd.Series) -> list[str]:
    """A green background per cell, deeper for the better score of its column (by the score's sense), among the
    scores that learnt something (`learnt`); none when fewer than two differ."""
    goodness = main.goodness(values)
    ranked = goodness[learnt]
    span = ranked.max() - ranked.min() if len(ranked) else 0
    if not span > 0:
        return [""] * len(values)
    return [f"background: rgba(46, 160, 67, {0.08 + 0.5 * (g - ranked.min()) / span:.2f})" if ok else ""
            for g, ok in zip(goodness, learnt)]


def at_baseline(rows: pd.DataFrame) -> pd.Series:
    """Whether each board row's interval reaches what the majority guesser scores (no lead over learning nothing);
    False where the score has no such baseline."""
    baseline = pd.to_numeric(rows["baseline"], errors="coerce")
    return baseline.notna() & (rows["lo"] <= baseline)


BOARD_COLUMNS = 4  # score columns per scoreboard table (two labels, two modalities): a page's width
# Before the references' notes when the data file is simulated (the demo's): its verdicts read against real galaxies.
SIMULATED_NOTE = ("This data file is a simulated survey, and the references were measured on real galaxies (the "
                  "published figures on DESI's): label, protocol, modality and k match, the galaxies do not, so a "
                  "verdict here shows how a score is read against a reference, not how the model compares with the "
                  "paper (for that, run config/desi-edr.yaml on the published file). ")


def scoreboard_section(config: dict[str, Any], board: pd.DataFrame, compared: pd.DataFrame,
                       references: pd.DataFrame, figure: str | Path | None = None,
                       baselines: pd.DataFrame | None = None, against: pd.DataFrame | None = None,
                       simulated: bool = False) -> dict[str, Any]:
    """The page's first section: the references at a glance (`figure`), then per table with main scores, models as
    rows and its main scores per label and query modality as columns (the best protocol's, with the 95% interval,
    shaded by rank in the column unless at the majority guesser's baseline), the configured references of that
    score as their own rows with each model's like-for-like score beneath a published figure, each baseline's best
    score (`baselines`, board rows of the feature sets) under every modality of its label with each model's paired
    difference to it (`against`, `scoreboard.against_baselines`), and whether the best model's lead over the next
    is resolved; on a `simulated` data file, the note first says that the references are of other galaxies."""
    boards = []
    for table in (t for kind in enabled(config) for t in kind.tables if t.main):
        for main in table.main:
            rows = board[(board["table"] == table.name) & (board["score"] == main.key)]
            if rows.empty:
                continue
            columns = list(dict.fromkeys(zip(rows["label"], rows["query"])))
            header = ["model", "embedding dim", *[f"{label} ({query})" if label else query for label, query in columns]]
            cells = {m: [{"text": ""}] * len(columns) for m in dict.fromkeys(rows["model"])}
            for (label, query), group in rows.groupby(["label", "query"], sort=False):
                learnt = ~at_baseline(group)
                for row, style, ok in zip(group.itertuples(), _shade(group["value"], main, learnt), learnt):
                    how = f"{row.protocol}, " if row.protocol else ""
                    cells[row.model][columns.index((label, query))] = {
                        "text": _interval(row.value, row.lo, row.hi) + ("" if ok else f" at baseline ({row.baseline:.3f})"),
                        "style": style, "title": f"{how}{row.query} -> {row.target}"}
            dims = rows.drop_duplicates("model").set_index("model")["embedding_dim"]
            body = [[{"text": m}, {"text": str(int(dims[m]))}, *cells[m]] for m in cells]
            if baselines is not None and len(baselines):
                body += _baseline_rows(config, table.name, main, baselines, against, columns)
            if table.references and table.references[2] == main.score:
                body += _reference_rows(references[references["metric"] == main.score], columns)
            mine = compared[(compared["table"] == table.name) & (compared["score"] == main.key)]
            if len(mine):
                lead = [{"text": "best - next", "title": "the paired bootstrap on the same galaxies"}, {"text": ""}]
                for label, query in columns:
                    found = mine[(mine["label"] == label) & (mine["query"] == query)]
                    lead.append({"text": _lead(found.iloc[0]) if len(found) else ""})
                body.append(lead)
            title = (f"{main.title}{' (lower is better)' if main.lower else ''}"
                     f"{f' (best: closest to {main.ideal:g})' if main.ideal is not None else ''}")
            for start in range(0, len(columns), BOARD_COLUMNS):  # a readable width: the columns in groups
                part = slice(2 + start, 2 + start + BOARD_COLUMNS)
                shown = [row[:2] + row[part] for row in body if row[:2][1]["text"] or any(c["text"] for c in row[part])]
                boards.append({"title": title if not start else f"{title}, continued", "header": header[:2] + header[part],
                               "rows": shown})
    note = ("The figure: per label and modality, each model's score (dot, 95% interval) against each reference the "
            "config names (published figure: diamond, beside the score of its own protocol and k; bound: bar, red "
            "when a score's whole interval exceeds it; another method: triangle). The tables: per task, label and "
            "query modality, each model's best protocol (hover a cell for it), with the 95% bootstrap interval over "
            "the scored rows; the deeper the green, the better in its column; \"at baseline\": the interval reaches "
            "what always answering the most common class scores, so nothing was learnt (never shaded). References "
            "are rows of their own, in italics: under a published figure, each model's score measured as the figure "
            "was (protocol, modality, k) and whether its interval holds it; a bound is what the data allow by any "
            "method (\"exceeded\" when a score's whole interval lies above it). \"best - next\": the best model's "
            "lead over the next (best minus next) and its paired bootstrap interval, both models resampled on the "
            "same galaxies; not resolved when the interval holds zero. A baseline (a feature set from a "
            "catalogue, such as the galaxies' magnitudes, scored by the protocols fitted on the train split) is a "
            "row in italics with its best score under both modalities of each label, followed by each model's "
            "paired difference to it (model minus baseline, each at its best protocol as the cells above, on the "
            "galaxies both scored; summary/against_baselines.csv).")
    note = (SIMULATED_NOTE if simulated and len(references) else "") + note
    image = embedded_png(figure) if figure else ""
    return _section("Scoreboard", "scoreboard", note, boards=boards, image=image)


def _baseline_rows(config: dict[str, Any], table: str, main: Main, baselines: pd.DataFrame, against: pd.DataFrame,
                   columns: list[tuple[str, str]]) -> list[list[dict[str, str]]]:
    """Per baseline: its best score of each label under both modalities' columns (in italics), then per model a row
    of that model's paired difference to it, each at its best protocol, on the galaxies both scored."""
    out = []
    for name, group in baselines[(baselines["table"] == table) & (baselines["score"] == main.key)].groupby(
            "model", sort=False):
        best = {row.label: (row, learnt) for row, learnt in zip(group.itertuples(), ~at_baseline(group))}
        row = [{"text": baseline_label(name, config["baselines"][name])}, {"text": str(int(group["embedding_dim"].iloc[0]))}]
        for label, _ in columns:
            found, learnt = best.get(label, (None, True))
            text = "" if found is None else _interval(found.value, found.lo, found.hi) + (
                "" if learnt else f" at baseline ({found.baseline:.3f})")
            row.append({"text": text, "style": "font-style: italic",
                        "title": f"{found.protocol}, {found.query} -> {found.target}"} if found else {"text": ""})
        out.append(row)
        mine = against[(against["table"] == table) & (against["score"] == main.key) & (against["baseline"] == name)]
        for model, diffs in mine.groupby("model", sort=False):
            cells = [{"text": f"{model} - {name}", "title": "the model's best protocol against the baseline's best, "
                      "paired bootstrap on the galaxies both scored"}, {"text": ""}]
            for label, query in columns:
                found = diffs[(diffs["label"] == label) & (diffs["query"] == query)]
                ok = len(found) and pd.notna(found.iloc[0]["difference"])
                cells.append({"text": _difference(found.iloc[0]), "title": f"{found.iloc[0]['protocol']} against "
                              f"{found.iloc[0]['baseline_protocol']}, {int(found.iloc[0]['n']):,} galaxies"} if ok
                             else {"text": ""})
            out.append(cells)
    return out


def _signed(found: pd.Series) -> str:
    """A paired difference with its interval: '+0.123 [+0.101, +0.145]'."""
    return f"{found['difference']:+.3f} [{found['lo']:+.3f}, {found['hi']:+.3f}]"


def _difference(found: pd.Series) -> str:
    """A paired difference, with 'not resolved' when its interval holds zero."""
    return _signed(found) if found["resolved"] else f"{_signed(found)} not resolved"


def _lead(found: pd.Series) -> str:
    """'dim128 leads: +0.023 [+0.010, +0.035]' or 'not resolved: ...'; without a per-galaxy form, who is ahead."""
    if pd.isna(found.get("difference")):
        return f"{found['best']} ahead (no paired interval)"
    shown = _signed(found)
    return f"{found['best']} leads: {shown}" if found["resolved"] else f"not resolved: {shown}"


def _reference_rows(references: pd.DataFrame, columns: list[tuple[str, str]]) -> list[list[dict[str, str]]]:
    """The references of a board's labels (`summary/references.csv` rows), one row per reference name: a figure
    under the modality it was measured on, followed by a row per model and protocol with the score measured as the
    figure was and its verdict; a bound or another method's score under both modalities of its label."""
    rows: dict[tuple[str, str], list[dict[str, str]]] = {}

    def cell(key: tuple[str, str], label: str, query: str, text: str, style: str = "font-style: italic") -> None:
        if (label, query) in columns:
            row = rows.setdefault(key, [{"text": key[0] if not key[1] else f"{key[0]} at {key[1]}"}, {"text": ""},
                                        *[{"text": ""} for _ in columns]])
            row[2 + columns.index((label, query))] = {"text": text, "style": style}

    for name, group in references.groupby("reference", sort=False):
        for _, ref in group.drop_duplicates("label").iterrows():
            exceeded = group[(group["label"] == ref["label"]) & (group["verdict"] == "exceeded")]["model"].tolist()
            flag = f"; exceeded by {', '.join(exceeded)}" if exceeded else ""
            for query in [ref["modality"]] if ref["kind"] == "published" else ["spectrum", "image"]:
                cell((name, ""), ref["label"], query, f"{ref['value']:g} ({how_measured(ref)}{flag})",
                     "font-style: italic; color: #b00" if flag else "font-style: italic")
        for _, mine in group[group["kind"] == "published"].iterrows():
            if mine["measured_by"]:
                protocol = mine["measured_by"].split(",")[0]
                cell((mine["model"], protocol), mine["label"], mine["modality"],
                     f"{_interval(mine['score'], mine['score_lo'], mine['score_hi'])}: {mine['verdict']}", "")
    return list(rows.values())


def shared_section(function: str, data: Any) -> dict[str, Any]:
    """A section from a file every model shares, drawn by the kind's `module:function`."""
    module, name = function.split(":")
    title, anchor, note, header, rows = getattr(importlib.import_module(module), name)(data)
    return _section(title, anchor, note, header, rows, _numeric(rows))


def reference_section(references: pd.DataFrame, simulated: bool = False) -> dict[str, Any] | None:
    """The published figures, bounds and baselines the config names, each beside every model's score read against
    it (`summary/references.csv`), with the verdict (on a `simulated` data file, said to be of other galaxies)."""
    if references.empty:
        return None
    rows = []
    for _, r in references.iterrows():
        score = _interval(r["score"], r["score_lo"], r["score_hi"]) if r["measured_by"] else ""
        score += f" (majority {r['majority']:.3f})" if score and pd.notna(r.get("majority")) else ""
        rows.append([r["label"], r["reference"], f"{r['value']:g}", how_measured(r), r["model"], r["measured_by"], score,
                     r["verdict"]])
    note = ("Each reference the config names, beside each model's score (with its 95% interval) read against it. A "
            "published figure is read only against the score of the same label, protocol, modality and k: "
            "\"within\" when the interval holds the figure, else the score is \"above\" or \"below\" it. A bound "
            "(what the data allow by any method) against the score whose interval reaches highest: \"exceeded\" when "
            "that whole interval lies above it, which says the bound is not one. Another method's score (a template "
            "fit, a supervised model) against the model's best score. Beside a question's accuracy, what always "
            "answering its most common class scores on the same rows (majority): a score near it learnt nothing. "
            "The rows are in summary/references.csv.")
    note = (SIMULATED_NOTE if simulated else "") + note
    return _section("Against references", "references", note,
                    ["label", "reference", "value", "measured by", "model", "this run's score by", "score", "verdict"],
                    rows, (2, 6))


def render(
    config: dict[str, Any],
    valid_summary: dict[str, Any],
    checkpoints: dict[str, dict[str, Any]],
    embedded: dict[str, dict[str, Any]],
    sections: list[dict[str, Any]],
    software: dict[str, str],
    schema: dict[str, Any] | None = None,
) -> str:
    """The landing page: the sections across models first (from `table_section`, `shared_section`,
    `reference_section`, in order), then the data (valid rows and why the others were left out), the models
    (`checkpoints`: model -> promotion record; `embedded`: model -> embedding record with its dimension and each
    shard's device), the settings (`schema` gives each one's meaning) and the software."""
    n, n_valid = valid_summary["n_rows"], valid_summary["n_valid"]
    z_min, z_max = valid_summary["z_min"], valid_summary["z_max"]
    reasons = [[REASONS.get(r, r) + (f" [{z_min}, {z_max}]" if r == "redshift_out_of_range" else ""), c]
               for r, c in valid_summary["invalid_by_reason"].items()]
    order = sorted(embedded, key=lambda m: (int(embedded[m]["dim"]), m))
    models = [
        [m, ARCHITECTURES.get(checkpoints[m].get("architecture"), "loader plug-in"), int(embedded[m]["dim"]),
         checkpoints[m]["source"], _or_na(checkpoints[m]["epoch"]), _or_na(checkpoints[m]["score"], "{:.4f}"),
         _devices(embedded[m]["shards"])]
        for m in order
    ]
    return TEMPLATE.render(
        sections=sections,
        style=STYLE,
        written=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        n=n,
        n_valid=n_valid,
        reasons=reasons,
        selection=valid_summary.get("selection"),  # recorded since the demo's survey selects by redshift success
        models=models,
        settings=_settings(config, schema or {}),
        software=list(software.items()),
    )
