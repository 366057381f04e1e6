"""The embedding-space measures against independent formulas on cases whose answers are known, and the refusals."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from conftest import ROOT
from scipy.spatial.distance import pdist
from sklearn.neighbors import NearestNeighbors

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks import representation
from astroclip_eval.tasks.representation import measure

RNG = np.random.default_rng(0)


def sphere(n: int, dims: int, rank: int | None = None, rng=RNG) -> np.ndarray:
    """n isotropic unit vectors in a random `rank`-dimensional subspace of `dims` dimensions (all of it by default)."""
    basis, _ = np.linalg.qr(rng.normal(size=(dims, rank or dims)))
    z = rng.normal(size=(n, rank or dims)) @ basis.T
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def table_of(image, spectrum, labels=None, k=10, draws=200):
    n = len(image)
    table, spectra = measure({"image": image, "spectrum": spectrum}, np.arange(n), labels or {}, k, "test", draws)
    return table.set_index(["modality", "metric", "label"]), spectra


def direct(z: np.ndarray, k: int) -> np.ndarray:
    """k nearest rows by cosine, itself excluded, by scikit-learn's exact search."""
    found = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(z).kneighbors(z)[1]
    return np.array([[j for j in row if j != i][:k] for i, row in enumerate(found)])


@pytest.mark.parametrize("rank", [3, 8])
def test_rank_r_embeddings_use_r_directions(rank):
    z = sphere(4000, 32, rank)
    table, spectra = table_of(z, sphere(4000, 32))
    assert abs(table.loc[("image", "rankme", ""), "value"] - rank) < 0.05 * rank
    assert table.loc[("image", "directions_99", ""), "value"] == rank
    assert table.loc[("spectrum", "directions_99", ""), "value"] > 25  # isotropic in 32: nearly every direction
    s = np.linalg.svd(z, compute_uv=False)  # the SVD itself, independent of the second-moment route
    p = s / s.sum() + 1e-7
    assert table.loc[("image", "rankme", ""), "value"] == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-6)
    image = spectra[spectra["modality"] == "image"]
    np.testing.assert_allclose(image["singular_value"].to_numpy()[:rank], s[:rank], rtol=1e-9)
    assert image["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_identical_modalities_are_aligned_without_gap_and_share_every_neighbour():
    z = sphere(600, 16)
    table, _ = table_of(z, z.copy())
    assert table.loc[("both", "alignment", ""), "value"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[("both", "modality_gap", ""), "value"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[("both", "mutual_knn10", ""), "value"] == 1.0
    assert table.loc[("both", "mutual_knn10", ""), ["value_lo", "value_hi"]].tolist() == [1.0, 1.0]


def test_uniform_points_are_more_uniform_than_clustered_ones_and_the_value_is_exact():
    uniform = sphere(1500, 8)
    centres = sphere(3, 8)
    clustered = centres[RNG.integers(0, 3, 1500)] + 0.1 * RNG.normal(size=(1500, 8))
    clustered /= np.linalg.norm(clustered, axis=1, keepdims=True)
    table, _ = table_of(uniform, clustered)
    spread, bunched = table.loc[("image", "uniformity", ""), "value"], table.loc[("spectrum", "uniformity", ""), "value"]
    assert spread < bunched - 1
    for z, value in ((uniform, spread), (clustered, bunched)):  # every pair, by SciPy's distances in float64
        assert value == pytest.approx(np.log(np.mean(np.exp(-2 * pdist(z, "sqeuclidean")))), abs=1e-6)


def test_uniformity_in_blocks_equals_one_block(monkeypatch):
    z = sphere(700, 12)
    whole = representation.uniformity(z)
    monkeypatch.setattr(representation, "block_rows", lambda n: 64)  # 11 blocks, the last short
    assert representation.uniformity(z) == pytest.approx(whole, abs=1e-7)  # float32 row sums of other lengths


def test_neighbour_measures_against_scikit_learn_and_direct_formulas():
    image, spectrum = sphere(500, 6), sphere(500, 6)
    spectrum = 0.7 * image + 0.3 * spectrum  # related modalities, so neighbours overlap partly
    label = image[:, 0] * 3 + RNG.normal(size=500)
    label[::7] = np.nan  # galaxies without the label: searched among those that have it
    table, _ = table_of(image, spectrum, {"mass": label}, k=5)
    knn = {"image": direct(image, 5), "spectrum": direct(spectrum, 5)}
    shared = [len(set(a) & set(b)) / 5 for a, b in zip(knn["image"], knn["spectrum"])]
    assert table.loc[("both", "mutual_knn5", ""), "value"] == pytest.approx(np.mean(shared))
    for m, z in (("image", image), ("spectrum", spectrum / np.linalg.norm(spectrum, axis=1, keepdims=True))):
        counts = np.bincount(knn[m].ravel(), minlength=500)
        assert table.loc[(m, "hubness5", ""), "value"] == pytest.approx(scipy.stats.skew(counts))
        has = np.flatnonzero(np.isfinite(label))
        near = direct(z[has], 5)
        expected = np.mean([np.std(label[has][row]) for row in near]) / np.std(label[has])
        assert table.loc[(m, "property_consistency", "mass"), "value"] == pytest.approx(expected)
        assert table.loc[(m, "property_consistency", "mass"), "n"] == has.size
    unit_spectrum = spectrum / np.linalg.norm(spectrum, axis=1, keepdims=True)
    assert table.loc[("both", "alignment", ""), "value"] == pytest.approx(np.mean(np.sum((image - unit_spectrum) ** 2, 1)))
    assert table.loc[("both", "modality_gap", ""), "value"] == pytest.approx(
        np.linalg.norm(image.mean(0) - unit_spectrum.mean(0)))
    lo, hi = table.loc[("both", "alignment", ""), ["value_lo", "value_hi"]]
    assert lo < table.loc[("both", "alignment", ""), "value"] < hi
    assert table.loc[("image", "property_consistency", "mass"), "value"] < 0.8  # the label follows the image


@pytest.mark.parametrize(
    "image, fragment",
    [
        (sphere(10, 4), "10 valid rows, but representation.neighbours = 10 needs at least 11"),
        (np.tile(sphere(1, 4), (40, 1)), "test: the image embeddings are one point on every valid row"),
        (np.vstack([sphere(39, 4), np.zeros((1, 4))]), "test: image embeddings: 1 rows are all zero"),
        (np.vstack([sphere(39, 4), np.full((1, 4), np.nan)]), "test: image embeddings: 1 rows are not finite"),
    ],
    ids=["too few rows", "constant", "a zero row", "not finite"],
)
def test_bad_embeddings_are_refused_in_one_line(image, fragment):
    with pytest.raises(UserError) as refused:
        table_of(image, sphere(len(image), 4))
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.slow
@pytest.mark.xdist_group("tiny")
def test_the_step_on_too_few_valid_rows_writes_nothing(tiny, tmp_path):
    outputs = {name: str(tmp_path / f"{name}.{suffix}") for name, suffix in (("table", "csv"), ("spectrum", "csv"),
                                                                            ("figure", "png"))}
    plan = {"model": "tiny", "dataset": str(tiny / "data/tiny/survey.h5"), "labels": "",
            **{f"{m}_embeddings": str(tiny / f"cache/tiny/{m}_embeddings.pt") for m in ("image", "spectrum")},
            "valid_indices": str(tiny / "cache/valid_indices.pt"), "bootstrap": 100, "device": "cpu",
            "settings": {"enabled": True, "neighbours": 100, "labels": ["redshift"]}, **outputs}
    n_valid = json.loads((tiny / "cache/valid_summary.json").read_text())["n_valid"]
    run = subprocess.run([sys.executable, ROOT / "workflow/scripts/representation.py", "--plan", json.dumps(plan),
                          "--log", str(tmp_path / "log")], capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].endswith(
        f"cache/tiny/image_embeddings.pt: {n_valid} valid rows, but representation.neighbours = 100 needs at least 101")
    assert list(tmp_path.iterdir()) == [tmp_path / "log"]
    plan["settings"]["neighbours"] = 5  # the same files, a k they hold: every output, and the table's rows
    run = subprocess.run([sys.executable, ROOT / "workflow/scripts/representation.py", "--plan", json.dumps(plan),
                          "--log", str(tmp_path / "log")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(outputs["table"])
    assert table["n"].eq(n_valid).all() and len(table) == 2 * 5 + 3 + 2  # per modality 5, both 3, redshift x 2
