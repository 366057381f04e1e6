"""The galaxy explorer's parts against independent computations, and one page built from a small survey file."""

from __future__ import annotations

import base64
import io
import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import write_groups
from PIL import Image
from sklearn.decomposition import PCA

from astroclip_eval.io.data import Survey
from astroclip_eval.style import to_rgb
from astroclip_eval.tasks import explorer

SETTINGS = {"max_galaxies": 2000, "projections": ["pca"], "thumbnail": 16, "spectrum_bins": 64, "seed": 0,
            "query_indices": [5], "top_k": 3, "exclude_self": True, "rows": "valid"}


def page_data(html: str) -> dict:
    (payload,) = re.findall(r'<script type="application/json" id="explorer-data">(.*?)</script>', html, re.S)
    return json.loads(payload)


def test_sample_keeps_the_queries_and_draws_only_valid_rows():
    valid = np.arange(0, 10_000, 3)
    assert np.array_equal(explorer.sample_rows(valid, 5000, 0), valid)
    drawn = explorer.sample_rows(valid, 500, 7, keep=[9, 10, 2997])  # 10 is not valid
    assert drawn.size == 500 and np.all(np.diff(drawn) > 0) and np.isin(drawn, valid).all()
    assert {9, 2997} <= set(drawn.tolist()) and 10 not in drawn
    assert np.array_equal(drawn, explorer.sample_rows(valid, 500, 7, keep=[9, 10, 2997]))
    assert not np.array_equal(drawn, explorer.sample_rows(valid, 500, 8, keep=[9, 10, 2997]))


def test_pca_map_is_scikit_learns_up_to_sign_and_scale():
    x = np.random.default_rng(0).normal(size=(300, 12)) * np.linspace(3, 0.5, 12)
    ours = explorer.project(x, "pca", 0)
    theirs = PCA(2).fit_transform(x / np.linalg.norm(x, axis=1, keepdims=True))
    for axis in range(2):
        ref = (theirs[:, axis] - theirs[:, axis].min()) / np.ptp(theirs[:, axis])
        assert min(np.abs(ours[:, axis] - ref).max(), np.abs(ours[:, axis] - (1 - ref)).max()) < 1e-9
    tsne = explorer.project(x[:60], "tsne", 0)
    assert tsne.shape == (60, 2) and tsne.min() == 0 and tsne.max() == 1


def test_spectrum_bytes_are_the_bin_means_to_a_step():
    spectra = np.random.default_rng(1).normal(1, 0.3, size=(4, 7781)).astype(np.float32)
    quantised, lo, hi = explorer.spectrum_bytes(spectra, 128)
    edges = np.linspace(0, 7781, 129).astype(int)
    means = np.array([[s[a:b].mean() for a, b in zip(edges[:-1], edges[1:])] for s in spectra.astype(np.float64)])
    assert np.allclose(lo, means.min(axis=1)) and np.allclose(hi, means.max(axis=1))
    back = lo[:, None] + quantised / 255 * (hi - lo)[:, None]
    assert np.abs(back - means).max() <= (hi - lo).max() / 255 / 2 + 1e-12


def test_sprite_sheets_put_tile_i_where_the_page_looks_for_it():
    n, size = explorer.TILES_PER_SIDE**2 + 70, 8  # two sheets
    colours = np.random.default_rng(2).integers(0, 256, size=(n, 3), dtype=np.uint8)
    tiles = np.broadcast_to(colours[:, None, None, :], (n, size, size, 3)).copy()
    sheets = explorer.sprite_sheets(tiles, quality=95)
    assert len(sheets) == 2
    decoded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))).astype(int) for uri in sheets]
    for i in (0, 63, 64, 4095, 4096, n - 1):
        sheet, j = divmod(i, explorer.TILES_PER_SIDE**2)
        r, c = divmod(j, explorer.TILES_PER_SIDE)
        centre = decoded[sheet][r * size + 4, c * size + 4]
        assert np.abs(centre - colours[i]).max() <= 12, i  # JPEG keeps a flat tile's colour to a few levels


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("explorer") / "survey.h5"
    cols = write_groups(path, [250, 250], image_size=20)
    n_valid = 100
    rng = np.random.default_rng(3)
    embeddings = {m: rng.normal(size=(n_valid, 8)).astype(np.float32) for m in ("image", "spectrum")}
    valid = np.setdiff1d(np.arange(n_valid), [2, 40, 77])
    return path, cols, embeddings, valid


def test_page_holds_the_independent_neighbours_and_no_remote_resource(small):
    path, cols, embeddings, valid = small
    labels = pd.DataFrame({"row": np.arange(100), "mass": np.linspace(9, 11, 100),
                           "shape": np.where(np.arange(100) % 3 == 0, "smooth", None)})
    with Survey(path) as survey:
        html, summary = explorer.build("m", survey, embeddings, valid, {**SETTINGS, "max_galaxies": 50}, labels)
        valid_rows = survey.read("valid", "redshifts").size
    data = page_data(html)
    galaxies = data["galaxies"]
    drawn = [galaxies["row"][g] for g in data["drawn"]]
    assert len(drawn) == 50 == summary["drawn"] and 5 in drawn and set(drawn) <= set(valid.tolist())
    # validation row r is file row 200 + r of group 0 (rows 0..199 train), whose redshift is (200 + r) / 1000
    valid_file_rows = np.r_[200:250, 450:500]
    assert valid_rows == 100
    for g, row in enumerate(galaxies["row"]):
        assert galaxies["targetid"][g] == str(cols["targetids"][valid_file_rows[row]])
        assert galaxies["z"][g] == pytest.approx(cols["redshifts"][valid_file_rows[row]], abs=1e-4)
    unit = {m: e / np.linalg.norm(e, axis=1, keepdims=True) for m, e in embeddings.items()}
    for mode, (qm, tm) in data["modes"].items():
        for i, row in enumerate(drawn):
            cos = unit[qm][row] @ unit[tm][valid].T
            order = [int(valid[j]) for j in np.argsort(-cos, kind="stable") if not (qm == tm and valid[j] == row)][:3]
            shown = slice(3 * i, 3 * i + 3)  # row-major (drawn point, rank)
            assert [galaxies["row"][g] for g in data["neighbours"][mode]["galaxy"][shown]] == order, (mode, row)
            assert data["neighbours"][mode]["cosine"][shown] == pytest.approx(np.sort(cos)[::-1][int(qm == tm):][:3], abs=1e-4)
    assert data["colours"]["mass"]["values"] == pytest.approx(list(np.linspace(9, 11, 100)[drawn]), abs=1e-4)
    shape = data["colours"]["shape"]
    assert shape["classes"] == ["smooth"] and shape["values"] == [0 if r % 3 == 0 else None for r in drawn]
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["sheets"][0].split(",", 1)[1])))).astype(float)
    expected = np.asarray(Image.fromarray(np.round(to_rgb(cols["images"][valid_file_rows[galaxies["row"][0]]]) * 255)
                                          .astype(np.uint8)).resize((16, 16), Image.Resampling.BOX)).astype(float)
    assert np.abs(thumb[:16, :16].mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max() < 4  # tile 0 is galaxy 0
    for modality in ("image", "spectrum"):  # the map's coordinates, as uint16 in base64
        xy = np.frombuffer(base64.b64decode(data["projections"]["pca"][modality]), "<u2").reshape(-1, 2) / 65535
        assert np.abs(xy - explorer.project(embeddings[modality][drawn], "pca", 0)).max() <= 0.5 / 65535 + 1e-12
    names_only = html.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace is a name, never fetched
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|https?://|@import""", names_only)
    assert summary["bytes"] == len(html.encode())


def test_two_thousand_noisy_galaxies_fit_in_twenty_megabytes(tmp_path):
    """The aim stated in the README: 2,000 drawn galaxies, pure-noise cut-outs (the worst case for JPEG) at the
    default 32-pixel thumbnails, 128 spectrum bins, and neighbours among 2,400 valid rows."""
    path, rng = tmp_path / "survey.h5", np.random.default_rng(4)
    with h5py.File(path, "w") as f:  # a flat file: all 2,400 rows are the validation split
        f["image"] = rng.normal(0, 0.05, size=(2400, 40, 40, 3)).astype(np.float32)
        f["spectrum"] = rng.normal(1, 0.3, size=(2400, 7781)).astype(np.float32)
        f["redshift"] = rng.uniform(0, 0.8, 2400).astype(np.float32)
        f["targetid"] = np.arange(2400, dtype=np.int64)
    embeddings = {m: rng.normal(size=(2400, 16)).astype(np.float32) for m in ("image", "spectrum")}
    settings = {**SETTINGS, "thumbnail": 32, "spectrum_bins": 128}
    with Survey(path) as survey:
        html, summary = explorer.build("m", survey, embeddings, np.arange(2400), settings)
    assert summary["drawn"] == 2000 and summary["galaxies"] > 2000
    print(f"{summary['galaxies']} galaxies: {len(html.encode()) / 1e6:.1f} MB")
    assert len(html.encode()) < 20e6, len(html.encode())


def test_unknown_projection_is_one_line():
    with pytest.raises(explorer.UserError, match="explorer.projections: 'umap'"):
        explorer.project(np.ones((4, 3)), "umap", 0)
