"""Figures shared by the notebooks and the summary: one style, labelled axes with units, greyscale-safe maps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from astroclip_eval.io.data import wavelength_grid
from astroclip_eval.io.plan import base_protocol
from astroclip_eval.style import SPECTRAL_LINES, to_rgb, use_style
from astroclip_eval.tasks.downstream import MODALITIES, PAIRS, r2_score

PROTOCOL_TITLES = {
    "reproduction": "reproduction: kNN mean, validation set",
    "zero_shot": "zero-shot: weighted kNN fitted on train",
    "few_shot": "few-shot: MLP trained on train",
}


def protocol_title(name: str) -> str:
    """A protocol column's title, with its k when the name carries one ('zero_shot@16')."""
    base, _, k = name.partition("@")
    return PROTOCOL_TITLES.get(base, base) + (f", k = {k}" if k else "")


def redshift_panels(
    redshifts: np.ndarray, predictions: dict[tuple[str, str], np.ndarray], z_max: float = 0.8, bins: int = 60
) -> plt.Figure:
    """2x2 true-vs-predicted 2D histograms (rows: query modality; columns: neighbour modality) with R^2."""
    use_style()
    fig, axes = plt.subplots(2, 2, figsize=(8, 7.5), sharex=True, sharey=True, constrained_layout=True)
    edges = np.linspace(0, z_max, bins + 1)
    for i, query in enumerate(MODALITIES):
        for j, target in enumerate(MODALITIES):
            ax = axes[i, j]
            pred = predictions[(query, target)]
            hist, *_ = np.histogram2d(redshifts, pred, bins=[edges, edges])
            mesh = ax.pcolormesh(edges, edges, np.log10(1 + hist.T), cmap="viridis", shading="flat")
            ax.plot([0, z_max], [0, z_max], color="white", lw=0.8, ls="--")
            ax.set_title(f"{query} query, {target} neighbours")
            ax.text(0.04, 0.93, f"$R^2$ = {r2_score(redshifts, pred):.3f}", transform=ax.transAxes, color="white",
                    fontsize=11, va="top")
            if i == 1:
                ax.set_xlabel("true redshift $z$")
            if j == 0:
                ax.set_ylabel("predicted redshift $z$ (kNN mean)")
    fig.colorbar(mesh, ax=axes, shrink=0.8, label="log$_{10}$(1 + galaxies per bin)")
    return fig


def retrieval_curves(ranks: dict[tuple[str, str], np.ndarray], title: str) -> plt.Figure:
    """Fraction of queries whose own counterpart is within the top k, against k, per direction, with the chance
    level (k / n) for reference."""
    use_style()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    n = max(r.size for r in ranks.values())
    k = np.unique(np.geomspace(1, n, 200).astype(int))
    for style, ((qm, tm), r) in zip(("-", "--"), ranks.items()):
        ax.plot(k, np.searchsorted(np.sort(r), k, side="right") / r.size, style, label=f"{qm} query, own {tm}")
    ax.plot(k, k / n, ":", color="grey", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel(f"k (rank among {n:,} valid rows)")
    ax.set_ylabel("fraction found within top k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def image_grid(queries: list[int], hits: dict[int, list[int]], images: dict[int, np.ndarray], title: str) -> plt.Figure:
    """One row per query: the query image, then its matches left to right by rank."""
    use_style()
    k = max(len(v) for v in hits.values())
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.6 * (k + 1), 1.7 * len(queries)), squeeze=False)
    for r, q in enumerate(queries):
        for c, idx in enumerate([q] + hits[q]):
            ax = axes[r, c]
            ax.imshow(to_rgb(images[idx]), origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("query" if c == 0 else f"#{c}", fontsize=8)
            ax.set_xlabel(f"row {idx}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _pale(colour: str, share: float = 0.85) -> tuple[float, float, float]:
    """`colour` mixed with white: opaque, so overlapping bands add no new colours to the PNG (transparency would)."""
    from matplotlib.colors import to_rgb as colour_rgb

    return tuple(c + (1 - c) * share for c in colour_rgb(colour))


def spectrum_plot(
    queries: list[int], hits: dict[int, list[int]], spectra: dict[int, np.ndarray], title: str,
    redshifts: dict[int, float], targetids: dict[int, int], smooth: int = 16,
) -> plt.Figure:
    """One panel per query: its spectrum (black) and its matches, offset, each smoothed for reading (block means of
    `smooth` bins) over the raw flux's spread (16th-84th percentile over 4 blocks, a faint band), with its row,
    TARGETID and redshift in the legend and the strong rest-frame lines marked at its own redshift (dashed: emission,
    dotted: absorption; named on the query).

    Block statistics (486 points for 16) rather than every raw bin keep the PNG small enough for the report to show
    inline (browsers refuse data URLs over 2 MB; the raw noise drawn bin by bin took a 3-query figure to 1.5 MB).
    """
    use_style()
    grid = wavelength_grid()
    n_blocks = len(grid) // smooth
    wave = grid[: n_blocks * smooth].reshape(n_blocks, smooth).mean(axis=1)
    k = max(len(v) for v in hits.values())
    fig, axes = plt.subplots(len(queries), 1, figsize=(8, (1.0 + 0.7 * (k + 1)) * len(queries)), squeeze=False, sharex=True)
    for ax, q in zip(axes[:, 0], queries):
        for n, idx in enumerate([q] + hits[q]):
            blocks = np.nan_to_num(spectra[idx])[: n_blocks * smooth].reshape(n_blocks, smooth)
            flux = blocks.mean(axis=1)
            scale = np.percentile(np.abs(flux), 95) or 1.0
            colour, offset = "black" if n == 0 else f"C{n - 1}", -1.5 * n
            coarse = blocks[: n_blocks // 4 * 4].reshape(n_blocks // 4, 4 * smooth)  # the raw flux's spread, as a
            low, high = np.percentile(coarse, [16, 84], axis=1)  # band over 4 blocks: small as a PNG
            ax.fill_between(wave[: n_blocks // 4 * 4].reshape(-1, 4).mean(axis=1), low / scale + offset,
                            high / scale + offset, color=_pale(colour), lw=0, zorder=0)
            name = "query" if n == 0 else f"#{n}"
            ax.plot(wave, flux / scale + offset, lw=0.8, color=colour,
                    label=f"{name}: row {idx}, TARGETID {targetids[idx]}, z = {redshifts[idx]:.3f}")
            for line, rest, kind in SPECTRAL_LINES:
                observed = rest * (1 + redshifts[idx])
                if grid[0] <= observed <= grid[-1]:
                    ax.plot([observed, observed], [offset - 0.6, offset + 0.6], color=colour, lw=0.6,
                            ls="--" if kind == "emission" else ":")
                    if n == 0 and line:
                        ax.text(observed, 1.35, line, fontsize=6, ha="center", va="bottom", color=colour)
        ax.set_ylim(-1.5 * len(hits[q]) - 1.0, 2.4)  # the raw flux's spikes would otherwise set the scale
        ax.set_ylabel("norm. flux + offset")
        ax.legend(fontsize=6, loc="upper right", ncol=2, framealpha=0.9)
    axes[-1, 0].set_xlabel("observed wavelength [\u00c5]")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def r2_vs_dim(summary: pd.DataFrame) -> plt.Figure:
    """R^2 against embedding dimension, one panel per protocol, one line per query/neighbour combination."""
    use_style()
    protocols = list(dict.fromkeys(summary["protocol"]))
    fig, axes = plt.subplots(1, len(protocols), figsize=(5.2 * len(protocols), 4), sharey=True, squeeze=False)
    styles = ["o-", "s--", "^-.", "D:"]
    for ax, protocol in zip(axes[0], protocols):
        rows = summary[summary["protocol"] == protocol]
        for style, ((query, target), grp) in zip(styles, rows.groupby(["query", "target"], sort=True)):
            grp = grp.sort_values("embedding_dim")
            ax.plot(grp["embedding_dim"], grp["r2"], style, label=f"{query} query, {target} neighbours")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("embedding dimension")
        ax.set_title(protocol_title(protocol))
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("redshift $R^2$")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def property_r2_vs_dim(summary: pd.DataFrame) -> plt.Figure:
    """Property R^2 against embedding dimension for one protocol (zero-shot when it was run, at its first k, else
    the first), one panel per property, one line per pair."""
    use_style()
    protocol = next((p for p in summary["protocol"] if base_protocol(p) == "zero_shot"), summary["protocol"].iloc[0])
    rows = summary[summary["protocol"] == protocol]
    names = list(dict.fromkeys(rows["property"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), sharey=True, squeeze=False)
    styles = ["o-", "s--", "^-.", "D:"]
    for ax, name in zip(axes[0], names):
        for style, ((query, target), grp) in zip(styles, rows[rows["property"] == name].groupby(["query", "target"], sort=True)):
            grp = grp.sort_values("embedding_dim")
            ax.plot(grp["embedding_dim"], grp["r2"], style, label=f"{query} query, {target} target")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("embedding dimension")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"$R^2$ ({protocol_title(protocol)})", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def property_panels(results: dict[str, tuple[np.ndarray, dict]], protocol: str, bins: int = 40) -> plt.Figure:
    """True against predicted value, one row per property, one column per (query, target) pair, for one protocol."""
    use_style()
    pairs = PAIRS
    fig, axes = plt.subplots(len(results), 4, figsize=(13, 3.1 * len(results)), squeeze=False, constrained_layout=True)
    for i, (name, (truth, predictions)) in enumerate(results.items()):
        lo, hi = np.percentile(truth, [0.5, 99.5])
        edges = np.linspace(lo, hi, bins + 1)
        for j, pair in enumerate(pairs):
            ax = axes[i, j]
            pred = predictions[(protocol, *pair)]
            hist, *_ = np.histogram2d(truth, pred, bins=[edges, edges])
            ax.pcolormesh(edges, edges, np.log10(1 + hist.T), cmap="viridis", shading="flat")
            ax.plot([lo, hi], [lo, hi], color="white", lw=0.8, ls="--")
            ax.text(0.04, 0.93, f"$R^2$ = {r2_score(truth, pred):.3f}", transform=ax.transAxes, color="white", va="top")
            ax.set_title(f"{pair[0]} query, {pair[1]} target", fontsize=9)
            ax.set_xlabel(f"true {name}")
            if j == 0:
                ax.set_ylabel(f"predicted {name}")
    fig.suptitle(f"{protocol_title(protocol)}; colour: log10(1 + galaxies per bin)")
    return fig


CONFUSION_CLASSES = 12  # a question with more classes shows its 11 most common and "other"


def confusion_panels(results: dict[str, tuple[list[str], np.ndarray, dict]], protocol: str) -> plt.Figure:
    """Confusion matrices (rows: true class, normalised to 1; columns: predicted), one row per question, one column
    per (query, target) pair, for one protocol; above CONFUSION_CLASSES classes, the most common true classes and
    the rest merged as "other" (said in the panel's title)."""
    use_style()
    pairs = PAIRS
    fig, axes = plt.subplots(len(results), 4, figsize=(13, 3.3 * len(results)), squeeze=False, constrained_layout=True)
    for i, (name, (names, truth, predictions)) in enumerate(results.items()):
        names, shown, original = list(names), None, truth
        if len(names) > CONFUSION_CLASSES:  # a readable matrix, and memory that does not grow with classes squared
            kept = np.argsort(-np.bincount(truth, minlength=len(names)), kind="stable")[: CONFUSION_CLASSES - 1]
            shown = np.full(len(names), len(kept))
            shown[kept] = np.arange(len(kept))
            names, truth = [names[k] for k in kept] + ["other"], shown[truth]
        n = len(names)
        for j, pair in enumerate(pairs):
            ax = axes[i, j]
            accuracy = np.mean(original == predictions[(protocol, *pair)])  # of the classes, not of "other"
            pred = predictions[(protocol, *pair)] if shown is None else shown[predictions[(protocol, *pair)]]
            counts = np.zeros((n, n))
            np.add.at(counts, (truth, pred), 1)
            share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
            ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
            for a in range(n):
                for b in range(n):
                    ax.text(b, a, f"{share[a, b]:.2f}", ha="center", va="center", fontsize=8,
                            color="black" if share[a, b] > 0.5 else "white")
            ax.set_xticks(range(n), names, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(n), names if j == 0 else [""] * n, fontsize=8)
            top = "" if shown is None else f" (its {n - 1} most common classes, the rest as other)"
            ax.set_title(f"{name}{top}\n{pair[0]} -> {pair[1]}, accuracy {accuracy:.2f}", fontsize=9)
            ax.set_xlabel("predicted class")
            if j == 0:
                ax.set_ylabel("true class (rows sum to 1)")
    fig.suptitle(protocol_title(protocol))
    return fig


REFERENCE_MARKS = {"published": ("D", "black", "published figure"), "bound": ("|", "tab:grey", "bound"),
                   "baseline": ("^", "tab:purple", "another method")}


def reference_forest(references: pd.DataFrame, simulated: bool = False) -> plt.Figure:
    """Every configured reference at a glance (`summary/references.csv`): a line per label and reference, each
    model's score read against it as a dot with its 95% interval, the reference's value as a mark (a bound in red
    where a score's whole interval exceeds it), and for a question what always guessing its most common class
    scores (a cross); references without a score of this run are left out. On a `simulated` data file the title
    says that the references are of real galaxies and the scores of simulated ones."""
    use_style()
    scored = references[references["measured_by"].astype(bool)]
    if scored.empty:
        return empty_figure("no configured reference has a score of this run")
    lines = list(dict.fromkeys(zip(scored["label"], scored["reference"])))
    models = list(dict.fromkeys(scored["model"]))
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.32 * len(lines) * max(1, len(models) / 2)), constrained_layout=True)
    step = 0.6 / max(len(models), 1)
    for y, (label, name) in enumerate(lines):
        rows = scored[(scored["label"] == label) & (scored["reference"] == name)]
        for m, model in enumerate(models):
            mine = rows[rows["model"] == model]
            if len(mine):
                r = mine.iloc[0]
                offset = y - 0.3 + step * (m + 0.5)
                ax.errorbar(r["score"], offset, xerr=[[r["score"] - r["score_lo"]], [r["score_hi"] - r["score"]]],
                            fmt="o", color=f"C{m}", ms=4, capsize=2, label=model if y == 0 else None)
        r = rows.iloc[0]
        if pd.notna(r.get("majority")):  # what guessing the most common class scores on the same rows
            ax.plot(r["majority"], y, "x", color="tab:grey", ms=9, mew=2, zorder=5)
        marker, colour, what = REFERENCE_MARKS[r["kind"]]
        exceeded = (rows["verdict"] == "exceeded").any()
        ax.plot(r["value"], y, marker, color="tab:red" if exceeded else colour, ms=14 if marker == "|" else 7,
                mew=2.5 if marker == "|" else 1, label=None)
    for kind, (marker, colour, what) in REFERENCE_MARKS.items():
        if (scored["kind"] == kind).any():
            ax.plot([], [], marker, color=colour, ls="", label=what)
    if (scored["verdict"] == "exceeded").any():
        ax.plot([], [], "|", color="tab:red", ls="", mew=2.5, ms=10, label="bound exceeded")
    if scored.get("majority", pd.Series(dtype=float)).notna().any():
        ax.plot([], [], "x", color="tab:grey", ls="", mew=1.5, label="majority guesser")
    ax.set_yticks(range(len(lines)), [f"{label}: {name}" for label, name in lines], fontsize=7)
    ax.invert_yaxis()
    metrics = " / ".join(dict.fromkeys(scored["metric"]))
    ax.set_xlabel(f"score ({metrics}); dots: this run's, with the 95% bootstrap interval")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    if simulated:
        ax.set_title("references: real galaxies; scores: this simulated survey's (a reading, not a comparison)",
                     fontsize=8)
    return fig


def empty_figure(message: str) -> plt.Figure:
    """A small figure that says why there is nothing to show (an output the rule declares is always written)."""
    use_style()
    fig = plt.figure(figsize=(4, 1))
    fig.text(0.5, 0.5, message, ha="center", va="center")
    return fig
