"""Properties and classifications on the downstream core, against scikit-learn and direct computations."""

import numpy as np
import pytest
from conftest import protocols
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, r2_score
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
    zero_shot = protocols(run=["zero_shot"], zero_shot_neighbours=64)
    reg, pred, truth = downstream.evaluate("p", v_emb, v_mass, rows_v, t_emb, t_mass, rows_t, zero_shot)
    cls, cpred, ctruth = downstream.evaluate("q", v_emb, v_cls, rows_v, t_emb, t_cls, rows_t, zero_shot, n_classes=3)
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
        assert row["f1_macro"] == pytest.approx(f1_score(v_cls[vc], expected, average="macro"), abs=1e-12)
        assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(v_cls[vc], expected), abs=1e-12)
        assert row["balanced_accuracy_lo"] <= row["balanced_accuracy"] <= row["balanced_accuracy_hi"]
        assert row["majority"] == np.bincount(v_cls[vc]).max() / vc.size and row["majority_balanced"] == 1 / 3
    assert {r["r2"] for r in reg if r["query"] == "spectrum"} and min(r["r2"] for r in reg if r["query"] == "spectrum") > 0.3


def test_reproduction_vote_matches_a_brute_force_cosine_knn(data):
    _, (v_emb, _, v_cls) = data
    rows = np.arange(180)
    cls, pred, truth = downstream.evaluate("q", v_emb, v_cls, rows, None, None, None, protocols(reproduction_neighbours=5),
                                           n_classes=3)
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
    reg, _, _ = downstream.evaluate("p", v_emb, v_mass, rows_v, t_emb, t_mass, rows_t, protocols(run=["few_shot"]))
    cls, _, _ = downstream.evaluate("q", v_emb, v_cls, rows_v, t_emb, t_cls, rows_t, protocols(run=["few_shot"]), n_classes=3)
    ss = next(r for r in reg if r["query"] == r["target"] == "spectrum")
    assert ss["r2"] > 0.3
    acc = next(r for r in cls if r["query"] == r["target"] == "spectrum")
    assert acc["accuracy"] > acc["majority"] + 0.1


def test_the_majority_guesser_scores_its_share_in_accuracy_and_one_over_the_classes_balanced(data):
    """A classifier that always answers the common class looks good by accuracy on an imbalanced question; balanced
    accuracy and macro F1 say it learnt nothing, as scikit-learn computes them on its predictions."""
    (t_emb, _, _), (v_emb, _, _) = data
    rng = np.random.default_rng(5)
    t_cls, v_cls = (np.where(rng.uniform(size=n) < 0.93, 1, 0).astype(np.int64) for n in (500, 180))  # no signal
    cls, pred, truth = downstream.evaluate("q", v_emb, v_cls, np.arange(180), t_emb, t_cls, np.arange(500),
                                           protocols(run=["zero_shot"], zero_shot_neighbours=64), n_classes=2)
    for row in cls:
        guessed = pred[("zero_shot", row["query"], row["target"])]
        assert row["accuracy"] == accuracy_score(truth, guessed) and row["accuracy"] >= 0.85
        assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, guessed), abs=1e-12)
        assert row["f1_macro"] == pytest.approx(f1_score(truth, guessed, average="macro"), abs=1e-12)
        assert row["majority_balanced"] == 0.5
        assert row["balanced_accuracy_lo"] <= row["majority_balanced"] <= row["balanced_accuracy_hi"]


@pytest.mark.parametrize("protocol", ["zero_shot", "reproduction"])
def test_a_list_of_k_equals_separate_runs_at_each_k(data, protocol):
    """Several k from one search at the largest: each k's neighbours (hence predictions) and R^2 equal a run at
    that k alone, each under its own column name."""
    (t_emb, t_mass, t_cls), (v_emb, v_mass, v_cls) = data
    rows_t, rows_v = np.arange(500), np.arange(180)
    ks = [64, 16, 5]
    for labels, classes in ((v_mass, 0), (v_cls, 3)):
        train_labels = t_mass if not classes else t_cls
        both, pred, _ = downstream.evaluate("p", v_emb, labels, rows_v, t_emb, train_labels, rows_t,
                                            protocols(run=[protocol], reproduction_neighbours=ks,
                                                      zero_shot_neighbours=ks), n_classes=classes)
        assert [r["protocol"] for r in both] == [f"{protocol}@{k}" for k in (5, 16, 64) for _ in downstream.PAIRS]
        for k in ks:
            one, alone, _ = downstream.evaluate("p", v_emb, labels, rows_v, t_emb, train_labels, rows_t,
                                                protocols(run=[protocol], reproduction_neighbours=k,
                                                          zero_shot_neighbours=k), n_classes=classes)
            for row, mine in zip(one, [r for r in both if r["protocol"] == f"{protocol}@{k}"]):
                assert (row["query"], row["target"]) == (mine["query"], mine["target"])
                score = "accuracy" if classes else "r2"
                assert mine[score] == row[score] and mine[f"{score}_lo"] == row[f"{score}_lo"]
                np.testing.assert_array_equal(pred[(f"{protocol}@{k}", row["query"], row["target"])],
                                              alone[(protocol, row["query"], row["target"])])


def test_a_k_larger_than_the_train_rows_names_the_key(data):
    (t_emb, t_mass, _), (v_emb, v_mass, _) = data
    with pytest.raises(UserError, match=r"protocols.zero_shot_neighbours: 600 neighbours requested from 428 valid"):
        downstream.evaluate("p", v_emb, v_mass, np.arange(180), t_emb, t_mass, np.arange(500),
                            protocols(run=["zero_shot"], zero_shot_neighbours=[16, 600]))


def test_redshift_metrics_against_direct_computations():
    rng = np.random.default_rng(0)
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
        downstream.evaluate("p", v_emb, np.ones(180), np.arange(180), None, None, None, protocols())


def test_class_codes_cover_both_splits():
    names, (a, b) = downstream.class_codes(
        np.array(["smooth", None, "featured"], object), np.array(["artifact", "smooth"], object)
    )
    assert names == ["artifact", "featured", "smooth"]
    assert a.tolist() == [2, -1, 1] and b.tolist() == [0, 2]
