"""One self-contained HTML page per model to explore its embedding space offline.

A 2-D map of the valid rows per modality (PCA, and t-SNE), coloured by redshift or a catalogue label; hovering a
point shows the galaxy, clicking it shows its neighbours in the four modes. The neighbours come from
`similarity.search`, the similarity step's own search, so they equal `similarity.csv` for its queries. Everything the
page shows is inside the file (thumbnails in JPEG sprite sheets, spectra quantised to bytes), so it opens from the
Snakemake report, from a laptop, or from a cluster's file browser with no network.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from PIL import Image

from astroclip_eval.io.data import WAVE_MAX, WAVE_MIN, Survey
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import SIMILARITY_MODES
from astroclip_eval.style import SPECTRAL_LINES, to_rgb
from astroclip_eval.tasks.downstream import MODALITIES
from astroclip_eval.tasks.similarity import search

PROJECTIONS = ("pca", "tsne")
# Chromium-based browsers open data: URLs of at most 2 MiB, which is how `--report report.html` embeds a page: a larger
# page opens on its own, or in a zip report (`--report report.zip`), which links pages as files.
EMBEDDED_PAGE_BYTES = (2 * 2**20 - 200) * 3 // 4
TILES_PER_SIDE = 64  # a sprite sheet holds 64 x 64 thumbnails
READ_ROWS = 256  # rows read from the survey at once for thumbnails and spectra
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf")


def sample_rows(valid: np.ndarray, max_galaxies: int, seed: int, keep: Sequence[int] = ()) -> np.ndarray:
    """The valid rows drawn on the map, sorted: all of them, or a seeded sample of `max_galaxies` that always holds
    the valid rows of `keep` (the similarity step's queries, so their neighbours can be compared)."""
    valid = np.asarray(valid, dtype=np.int64)
    if valid.size <= max_galaxies:
        return np.sort(valid)
    kept = np.intersect1d(np.asarray(keep, dtype=np.int64), valid)[:max_galaxies]
    rest = np.setdiff1d(valid, kept)
    drawn = np.random.default_rng(seed).choice(rest, size=max_galaxies - kept.size, replace=False)
    return np.sort(np.concatenate([kept, drawn]))


def project(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    """(n, 2) map coordinates scaled to [0, 1] of unit-length embeddings (cosine geometry, as the searches use)."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        xy *= np.where(vt[:2].sum(axis=1) < 0, -1.0, 1.0)  # the sign of a component is arbitrary: fix it
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3)))
        xy = TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)
    else:
        raise UserError(f"explorer.projections: '{method}' is not one of {list(PROJECTIONS)}")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return (xy - lo) / np.where(hi > lo, hi - lo, 1.0)


def thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8 cut-outs in the report's colour mapping (`style.to_rgb`), box-averaged."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        rgb = Image.fromarray(np.round(to_rgb(image) * 255).astype(np.uint8))
        out[i] = np.asarray(rgb.resize((size, size), Image.Resampling.BOX))
    return out


def spectrum_bytes(spectra: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectra averaged into `bins` wavelength bins and quantised to one byte each between each spectrum's own
    minimum and maximum: (n, bins) uint8, minimum, maximum. Enough for a small plot, 60x smaller than the floats."""
    edges = np.linspace(0, spectra.shape[1], bins + 1).astype(int)
    binned = np.add.reduceat(np.nan_to_num(spectra.astype(np.float64)), edges[:-1], axis=1) / np.diff(edges)
    lo, hi = binned.min(axis=1), binned.max(axis=1)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return np.round((binned - lo[:, None]) / scale[:, None] * 255).astype(np.uint8), lo, hi


def sprite_sheets(tiles: np.ndarray, quality: int = 75) -> list[str]:
    """JPEG data URIs of sheets of TILES_PER_SIDE x TILES_PER_SIDE tiles, row-major: tile i is in sheet
    i // TILES_PER_SIDE**2 at column i % TILES_PER_SIDE and row (i // TILES_PER_SIDE) % TILES_PER_SIDE."""
    per_sheet, size = TILES_PER_SIDE**2, tiles.shape[1]
    sheets = []
    for lo in range(0, len(tiles), per_sheet):
        chunk = tiles[lo : lo + per_sheet]
        rows = -(-len(chunk) // TILES_PER_SIDE)
        canvas = np.zeros((rows * size, TILES_PER_SIDE * size, 3), dtype=np.uint8)
        for j, tile in enumerate(chunk):
            r, c = divmod(j, TILES_PER_SIDE)
            canvas[r * size : (r + 1) * size, c * size : (c + 1) * size] = tile
        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, format="JPEG", quality=quality)
        sheets.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
    return sheets


def colour_columns(redshifts: np.ndarray, labels: pd.DataFrame | None, rows: np.ndarray) -> dict[str, dict]:
    """What the map can be coloured by, on the drawn rows: redshift, then each catalogue label (numbers, or classes
    as indices into their sorted names; missing values as null)."""
    out = {"redshift": {"kind": "number", "values": _rounded(redshifts[rows])}}
    if labels is not None:
        table = labels.set_index("row").drop(columns="targetid", errors="ignore").reindex(rows)  # an id is no colour
        for name in table.columns:
            column = table[name]
            if pd.api.types.is_numeric_dtype(column):
                out[name] = {"kind": "number", "values": _rounded(column.to_numpy(dtype=np.float64))}
            else:
                classes = sorted(column.dropna().astype(str).unique())
                index = {c: i for i, c in enumerate(classes)}
                out[name] = {"kind": "class", "classes": classes,
                             "values": [None if pd.isna(v) else index[str(v)] for v in column]}
    return out


def _uint16(xy: np.ndarray) -> str:
    """Map coordinates in [0, 1] as little-endian uint16 (x0, y0, x1, ...) in base64: a 65,536th of the map is far
    below a pixel, and 2.7 characters per number instead of about 6 as decimals."""
    return base64.b64encode(np.round(xy.ravel() * 65535).astype("<u2").tobytes()).decode()


def _rounded(values: np.ndarray, digits: int = 4) -> list[float | None]:
    return [round(float(v), digits) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


# Characters that can end or change a <script> element's text (</script>, <!--, ]]>) or a JavaScript line; escaped
# as JSON's \uXXXX, they are the same string to the page's JSON.parse and nothing to the HTML parser.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> str:
    """`data` as JSON that can sit inside a <script> element whatever its strings hold (a class label
    `<!--<script>` would otherwise swallow the page's own script)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.translate(str.maketrans(_SCRIPT_UNSAFE))


def build(
    model: str,
    survey: Survey,
    embeddings: Mapping[str, np.ndarray],
    valid: np.ndarray,
    settings: Mapping[str, Any],
    labels: pd.DataFrame | None = None,
) -> tuple[str, dict[str, Any]]:
    """The page's HTML and a summary (rows drawn, galaxies shown, sizes). `settings` holds the explorer's keys
    (max_galaxies, projections, thumbnail, spectrum_bins, seed) and the similarity search's (query_indices, top_k,
    exclude_self, rows), as the config names them."""
    rows = sample_rows(valid, settings["max_galaxies"], settings["seed"], settings["query_indices"])
    if rows.size < 2:
        raise UserError(f"explorer: {rows.size} valid rows, at least 2 are needed for a map")
    k = settings["top_k"]
    matches = search(dict(embeddings), valid, rows.tolist(), k, exclude_self=settings["exclude_self"],
                     rows=settings["rows"])
    shown = np.union1d(rows, matches["index"].to_numpy())  # every galaxy the page can show, drawn or a neighbour
    position = {int(r): i for i, r in enumerate(shown)}
    tiles, spectra, lows, highs = [], [], [], []
    for lo in range(0, shown.size, READ_ROWS):
        block = shown[lo : lo + READ_ROWS]
        tiles.append(thumbnails(survey.read_rows("valid", "images", block), settings["thumbnail"]))
        quantised, low, high = spectrum_bytes(survey.read_rows("valid", "spectra", block), settings["spectrum_bins"])
        spectra.append(quantised), lows.append(low), highs.append(high)
    redshifts = survey.read("valid", "redshifts")
    targetids = survey.read("valid", "targetids")
    neighbours = {}
    for mode in SIMILARITY_MODES:
        hits = matches[matches["mode"] == mode].sort_values(["query", "rank"])
        neighbours[mode] = {  # row-major (drawn point, rank)
            "galaxy": hits["index"].map(position).tolist(),
            "cosine": np.round(hits["cosine"].to_numpy(), 4).tolist(),
        }
    sheets = sprite_sheets(np.concatenate(tiles))
    data = {
        "model": model,
        "n_valid": int(valid.size),
        "drawn": [position[int(r)] for r in rows],
        "projections": {
            method: {m: _uint16(project(embeddings[m][rows], method, settings["seed"])) for m in MODALITIES}
            for method in settings["projections"]
        },
        "colours": colour_columns(redshifts, labels, rows),
        "class_colours": CLASS_COLOURS,
        "galaxies": {
            "row": shown.tolist(),
            "targetid": [str(t) for t in targetids[shown]],  # int64 ids exceed a JavaScript number's 2^53
            "z": _rounded(redshifts[shown]),
            "spectrum_low": _rounded(np.concatenate(lows), 6),
            "spectrum_high": _rounded(np.concatenate(highs), 6),
        },
        "spectra": base64.b64encode(np.concatenate(spectra).tobytes()).decode(),
        "spectrum_bins": settings["spectrum_bins"],
        "wavelength": [WAVE_MIN, WAVE_MAX],
        "lines": [[name, rest, kind] for name, rest, kind in SPECTRAL_LINES],  # marked at each galaxy's redshift
        "sheets": sheets,
        "tile": settings["thumbnail"],
        "tiles_per_side": TILES_PER_SIDE,
        "neighbours": neighbours,
        "modes": {mode: list(pair) for mode, pair in SIMILARITY_MODES.items()},
        "top_k": k,
        "exclude_self": settings["exclude_self"],
        "candidates": settings["rows"],
    }
    template = jinja2.Template(resources.files("astroclip_eval").joinpath("templates/explorer.html.j2").read_text())
    payload = script_json(data)
    html = template.render(model=model, data=payload)
    summary = {"model": model, "drawn": int(rows.size), "valid": int(valid.size), "galaxies": int(shown.size),
               "top_k": k, "projections": list(settings["projections"]), "bytes": len(html.encode())}
    return html, summary
