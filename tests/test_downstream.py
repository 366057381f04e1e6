"""Properties and classifications on the downstream core, against scikit-learn and direct computations."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, r2_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, NearestNeighbors
from sklearn.preprocessing import StandardScaler

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks import downstream
from astroclip_eval.tasks.redshift import redshift_metrics

pytestmark = pytest.mark.numeric  # rerun under a second torch CPU kernel (tests/test_kernels.py)


def _split(rng, n):
    mass = rng.normal(10, 0.7, n)
    base = rng.normal(size=(n, 6))
    base[:, 0] += 2 * (mass - 10)
    emb = {"spectrum": base + 0.3 * rng.normal(size=(n, 6)), "image": base + 0.9 * rng.normal(size=(n, 6))}
    classes = np.where(base[:, 1] > 0.5, 2, np.where(base[:, 0] > 0, 1, 0)).astype(np.int64)
    return emb, mass, classes


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    train, valid = _split(rng, 500), _split(rng, 180)
    for _, mass, classes in (train, valid):
        mass[::7] = np.nan  # galaxies the catalogue does not have
        classes[::5] = -1
    return train, valid


def test_zero_shot_property_and_class_match_scikit_learn(data):
    (t_emb, t_mass, t_cls), (v_emb, v_mass, v_cls) = data
    rows_t, rows_v = np.arange(500)[1:], np.arange(180)[2:]  # valid rows: a few invalid ones left out
    reg, pred, truth = downstream.evaluate("p", v_emb, v_mass, rows_v, t_emb, t_mass, rows_t, ["zero_shot"], zero_shot_k=64)
    cls, cpred, ctruth = downstream.evaluate(
        "q", v_emb, v_cls, rows_v, t_emb, t_cls, rows_t, ["zero_shot"], n_classes=3, zero_shot_k=64
    )
    tm, vm = rows_t[np.isfinite(t_mass[rows_t])], rows_v[np.isfinite(v_mass[rows_v])]
    tc, vc = rows_t[t_cls[rows_t] >= 0], rows_v[v_cls[rows_v] >= 0]
    assert np.array_equal(truth, v_mass[vm]) and np.array_equal(ctruth, v_cls[vc])
    for query, target in downstream.PAIRS:
        scaler = StandardScaler().fit(t_emb[target][tm])
        sk = KNeighborsRegressor(64, weights="distance").fit(scaler.transform(t_emb[target][tm]), t_mass[tm])
        expected = sk.predict(scaler.transform(v_emb[query][vm]))
        np.testing.assert_allclose(pred[("zero_shot", query, target)], expected, rtol=1e-9)  # float64 both ways
        row = next(r for r in reg if (r["query"], r["target"]) == (query, target))
        assert row["n"] == vm.size and row["r2"] == pytest.approx(r2_score(v_mass[vm], expected), abs=1e-9)
        scaler = StandardScaler().fit(t_emb[target][tc])
        skc = KNeighborsClassifier(64, weights="distance").fit(scaler.transform(t_emb[target][tc]), t_cls[tc])
        expected = skc.predict(scaler.transform(v_emb[query][vc]))
        assert np.array_equal(cpred[("zero_shot", query, target)], expected)
        row = next(r for r in cls if (r["query"], r["target"]) == (query, target))
        assert row["accuracy"] == accuracy_score(v_cls[vc], expected)
        assert row["f1_weighted"] == pytest.approx(f1_score(v_cls[vc], expected, average="weighted"), abs=1e-12)
        assert row["majority"] == np.bincount(v_cls[vc]).max() / vc.size
    assert {r["r2"] for r in reg if r["query"] == "spectrum"} and min(r["r2"] for r in reg if r["query"] == "spectrum") > 0.3


def test_reproduction_vote_matches_a_brute_force_cosine_knn(data):
    _, (v_emb, _, v_cls) = data
    rows = np.arange(180)
    cls, pred, truth = downstream.evaluate("q", v_emb, v_cls, rows, None, None, None, ["reproduction"], n_classes=3, k=5)
    have = rows[v_cls >= 0]
    for query, target in downstream.PAIRS:
        same = query == target
        nn = NearestNeighbors(n_neighbors=5 + same, metric="cosine").fit(v_emb[target][have])
        idx = nn.kneighbors(v_emb[query][have], return_distance=False)
        if same:  # leave the query out of its own neighbours
            idx = np.array([[j for j in row if j != i][:5] for i, row in enumerate(idx)])
        votes = v_cls[have][idx]
        expected = np.array([np.bincount(v, minlength=3).argmax() for v in votes])  # ties: the lowest class
        assert np.array_equal(pred[("reproduction", query, target)], expected), (query, target)


def test_few_shot_classifier_and_regressor_learn(data):
    (t_emb, t_mass, t_cls), (v_emb, v_mass, v_cls) = data
    rows_t, rows_v = np.arange(500), np.arange(180)
    reg, _, _ = downstream.evaluate("p", v_emb, v_mass, rows_v, t_emb, t_mass, rows_t, ["few_shot"])
    cls, _, _ = downstream.evaluate("q", v_emb, v_cls, rows_v, t_emb, t_cls, rows_t, ["few_shot"], n_classes=3)
    ss = next(r for r in reg if r["query"] == r["target"] == "spectrum")
    assert ss["r2"] > 0.3
    acc = next(r for r in cls if r["query"] == r["target"] == "spectrum")
    assert acc["accuracy"] > acc["majority"] + 0.1


def test_f1_and_redshift_metrics_against_direct_computations():
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 4, 300), rng.integers(0, 5, 300)  # class 4 only predicted
    assert downstream.f1_weighted(truth, pred) == pytest.approx(f1_score(truth, pred, average="weighted"), abs=1e-12)
    z = rng.uniform(0, 0.8, 1000)
    zp = z + rng.normal(0, 0.02, 1000) * (1 + z)
    zp[:30] += 0.5
    m = redshift_metrics(z, zp)
    dz = (zp - z) / (1 + z)
    assert m["bias"] == np.median(dz)
    assert m["sigma_nmad"] == pytest.approx(1.4826 * np.median(np.abs(dz - np.median(dz))), rel=1e-12)
    assert m["outlier_fraction"] == np.mean(np.abs(dz) > 0.15) and m["outlier_fraction"] >= 0.03
    assert m["sigma_nmad"] == pytest.approx(0.02, rel=0.15)


def test_non_finite_embeddings_are_refused(data):
    _, (v_emb, v_mass, _) = data
    v_emb = {m: e.copy() for m, e in v_emb.items()}
    v_emb["image"][[4, 9]] = np.nan
    with pytest.raises(UserError, match=r"image embeddings: 2 rows are not finite \(first rows \[4, 9\]\)"):
        downstream.evaluate("p", v_emb, np.ones(180), np.arange(180), None, None, None, ["reproduction"])


def test_class_codes_cover_both_splits():
    names, (a, b) = downstream.class_codes(
        np.array(["smooth", None, "featured"], object), np.array(["artifact", "smooth"], object)
    )
    assert names == ["artifact", "featured", "smooth"]
    assert a.tolist() == [2, -1, 1] and b.tolist() == [0, 2]
