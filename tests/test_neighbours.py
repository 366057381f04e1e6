"""kNN redshift and similarity search against direct, independent computations."""

import numpy as np
import pytest
from conftest import protocols
from sklearn.metrics import r2_score as sk_r2
from sklearn.neighbors import NearestNeighbors

from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks import neighbours
from astroclip_eval.tasks.neighbours import top_k
from astroclip_eval.tasks.redshift import evaluate
from astroclip_eval.tasks.retrieval import own_ranks
from astroclip_eval.tasks.similarity import search

pytestmark = pytest.mark.numeric  # rerun under a second torch CPU kernel (tests/test_kernels.py)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def emb():
    rng = np.random.default_rng(3)
    n, d = 400, 8
    z = rng.uniform(0, 0.8, n).astype(np.float32)
    base = rng.normal(size=(n, d))
    base[:, :2] += 8 * (z[:, None] - 0.3)  # redshift along two of eight directions, centred
    return {"spectrum": _unit(base + 0.3 * rng.normal(size=(n, d))), "image": _unit(base + 0.8 * rng.normal(size=(n, d)))}, z


@pytest.mark.parametrize("block_bytes", [None, 350 * 4 * 37], ids=["one block", "blocks of 37 rows"])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_knn_r2_matches_scikit_learn(emb, exclude_self, block_bytes, monkeypatch):
    if block_bytes:  # the blocking that keeps memory flat at full size: the diagonal must follow each block
        monkeypatch.setattr(neighbours, "BLOCK_BYTES", block_bytes)
        assert neighbours.block_rows(350) == 37
    embeddings, z = emb
    valid = np.sort(np.random.default_rng(0).choice(400, 350, replace=False))
    table, _, predictions = evaluate(embeddings, z, valid, protocols(reproduction_neighbours=16, exclude_self=exclude_self))
    assert table[["query", "target"]].values.tolist() == [
        ["spectrum", "spectrum"], ["spectrum", "image"], ["image", "spectrum"], ["image", "image"]
    ]
    zv = z[valid]
    for (query, target), r2 in zip(table[["query", "target"]].values.tolist(), table["r2"]):
        q, t = embeddings[query][valid], embeddings[target][valid]
        drop = exclude_self and query == target
        nn = NearestNeighbors(n_neighbors=16 + drop).fit(t)  # Euclidean on unit vectors ranks like cosine
        _, idx = nn.kneighbors(q)
        if drop:
            idx = np.array([[j for j in row if j != i][:16] for i, row in enumerate(idx)])
        expected = zv[idx].mean(axis=1)
        np.testing.assert_allclose(predictions[("reproduction", query, target)], expected, rtol=1e-6)
        assert r2 == pytest.approx(sk_r2(zv, expected), abs=1e-6)
    assert table.set_index(["query", "target"]).loc[("spectrum", "spectrum"), "r2"] > 0.5


def test_seed_behaviour_includes_self(emb):
    embeddings, z = emb
    _, _, predictions = evaluate(embeddings, z, np.arange(z.size), protocols(reproduction_neighbours=1, exclude_self=False))
    # each query's nearest neighbour is itself
    np.testing.assert_allclose(predictions[("reproduction", "spectrum", "spectrum")], z)


def test_k_bounds(emb):
    embeddings, z = emb
    with pytest.raises(UserError, match="reproduction_neighbours = 10 needs at least 11 labelled valid rows, there are 10"):
        evaluate(embeddings, z, np.arange(10), protocols(reproduction_neighbours=10, exclude_self=True))
    with pytest.raises(UserError, match="no valid rows"):
        evaluate(embeddings, z, np.arange(0), protocols(reproduction_neighbours=3, exclude_self=True))


def test_similarity_top_k_brute_force(emb):
    embeddings, _ = emb
    valid = np.arange(0, 400, 2)
    queries = [10, 52]
    table = search(embeddings, valid, queries, k=3)
    assert len(table) == 4 * 2 * 3
    pairs = {
        "sp-sp": ("spectrum", "spectrum"),
        "im-im": ("image", "image"),
        "sp-im": ("spectrum", "image"),
        "im-sp": ("image", "spectrum"),
    }
    for mode, (qm, tm) in pairs.items():
        for q in queries:
            cos = embeddings[tm][valid] @ embeddings[qm][q]
            order = [int(valid[j]) for j in np.argsort(-cos, kind="stable")]
            if qm == tm:
                order.remove(q)
            got = table[(table["mode"] == mode) & (table["query"] == q)].sort_values("rank")
            assert got["index"].tolist() == order[:3]
            np.testing.assert_allclose(got["cosine"], [embeddings[tm][i] @ embeddings[qm][q] for i in order[:3]], rtol=1e-5)
            assert got["rank"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("exclude_self", [True, False])
@pytest.mark.parametrize("rows", ["valid", "all"])
def test_similarity_switches_brute_force(emb, exclude_self, rows):
    """similarity.exclude_self / similarity.rows against a full cosine matrix sorted by numpy."""
    embeddings, _ = emb
    valid = np.arange(0, 400, 2)
    candidates = valid if rows == "valid" else np.arange(400)
    queries = [10, 52] + ([11] if rows == "all" else [])  # an invalid row may be queried only among all rows
    table = search(embeddings, valid, queries, k=4, exclude_self=exclude_self, rows=rows)
    unit = {m: e / np.linalg.norm(e, axis=1, keepdims=True) for m, e in embeddings.items()}
    for qm, tm, mode in (("spectrum", "spectrum", "sp-sp"), ("image", "image", "im-im"), ("spectrum", "image", "sp-im")):
        for q in queries:
            cos = unit[tm][candidates] @ unit[qm][q]
            order = [int(candidates[j]) for j in np.argsort(-cos, kind="stable")]
            if qm == tm and exclude_self:
                order.remove(q)
            got = table[(table["mode"] == mode) & (table["query"] == q)].sort_values("rank")
            assert got["index"].tolist() == order[:4]
            if qm == tm and not exclude_self:
                assert got["index"].iloc[0] == q and got["cosine"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    if rows == "all":
        assert not set(table["index"]) <= set(valid.tolist())  # some match is an invalid (odd) row


def test_invalid_query_is_refused(emb):
    embeddings, _ = emb
    with pytest.raises(UserError, match="row 11 is not a valid row"):
        search(embeddings, np.arange(0, 400, 2), [11], k=3)
    with pytest.raises(UserError, match="outside the validation set"):
        search(embeddings, np.arange(0, 400, 2), [400], k=3)
    with pytest.raises(UserError, match=r"similarity.top_k: 5 matches per query \(and the query itself, left out\) asked of "
                       r"5 candidate rows \(similarity.rows: valid\)"):
        search(embeddings, np.arange(5), [2], k=5)


def test_non_finite_rows_never_become_a_score(emb):
    """A NaN similarity sorts as a match (top-1 = 1.0, R^2 from NaN): the search, the ranks and the redshift refuse
    non-finite rows in one line, naming how many and which."""
    embeddings, z = emb
    broken = {m: e.copy() for m, e in embeddings.items()}
    broken["image"][[4, 9]] = np.nan
    with pytest.raises(UserError, match=r"target embeddings: 2 rows are not finite \(first rows \[4, 9\]\)"):
        top_k(broken["spectrum"], broken["image"], 3)
    with pytest.raises(UserError, match=r"query embeddings: 2 rows are not finite \(first rows \[4, 9\]\)"):
        own_ranks(broken["image"], broken["spectrum"])
    with pytest.raises(UserError, match=r"image embeddings: 2 rows are not finite \(first rows \[4, 9\]\)"):
        evaluate(broken, z, np.arange(z.size), protocols(reproduction_neighbours=16, exclude_self=True))
    kept = np.setdiff1d(np.arange(z.size), [4, 9])
    table, _, _ = evaluate(broken, z, kept, protocols(reproduction_neighbours=16, exclude_self=True))
    assert np.isfinite(table["r2"]).all()  # the same rows left out by the valid indices: scored


def _brute_force(train: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 distances to every row by direct differences, stable order: ties to the lower train index."""
    d = np.sqrt(((query[:, None, :] - train[None, :, :]) ** 2).sum(axis=2))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


@pytest.mark.parametrize("extra", [16, 0], ids=["screened", "every row searched again"])
def test_euclidean_knn_equals_a_float64_brute_force_search(extra, monkeypatch):
    """The float32 screen with its float64 decision against a direct float64 search and scikit-learn's: the same
    neighbours in the same order, the same distances; with no spare candidates every row fails the bound and is
    searched again in float64, with the same answer."""
    monkeypatch.setattr(neighbours, "SCREEN_EXTRA", extra)
    rng = np.random.default_rng(11)
    train, query = rng.normal(size=(900, 16)), rng.normal(size=(120, 16))
    dist, idx = neighbours.euclidean_knn(train, query, 20)
    expected_dist, expected_idx = _brute_force(train, query, 20)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist, expected_dist, rtol=1e-12)
    sk_dist, sk_idx = NearestNeighbors(n_neighbors=20, algorithm="brute").fit(train).kneighbors(query)
    np.testing.assert_array_equal(idx, sk_idx)
    np.testing.assert_allclose(dist, sk_dist, rtol=1e-9)


def test_euclidean_knn_where_float32_cannot_tell_the_rows_apart(monkeypatch):
    """Train rows 1e4 from the origin that differ by 1e-6 in one coordinate: float32 rounds them together (its
    spacing there is ~1e-3), so the screen's order is noise; the bound sends those rows to the float64 search and
    the neighbours are still the exact ones, ties going to the lower index."""
    rng = np.random.default_rng(5)
    centre = np.full(8, 1e4)
    train = centre + np.outer(rng.permutation(300), np.eye(8)[0]) * 1e-6
    train = np.vstack([train, train[:5]])  # exact ties: rows 300-304 repeat rows 0-4
    query = centre[None, :] + np.array([[-1e-6] + [0] * 7, [150.2e-6] + [0] * 7])
    searched_again = []
    float64_knn = neighbours.float64_knn
    monkeypatch.setattr(neighbours, "float64_knn", lambda t, q, *a: searched_again.append(len(q)) or float64_knn(t, q, *a))
    dist, idx = neighbours.euclidean_knn(train, query, 6)
    assert searched_again == [2]  # both rows failed the screen's bound
    expected_dist, expected_idx = _brute_force(train, query, 6)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist, expected_dist, rtol=1e-9)


def test_the_screen_s_error_stays_inside_its_bound():
    """The float32 screen's value ||t||^2 - 2 q.t against float64, on rows of very different lengths: every error
    is inside `screen_bound`, and the bound is not vacuous (under 1e-3 of the largest squared norm)."""
    import torch

    rng = np.random.default_rng(2)
    train = rng.normal(size=(2000, 128)) * rng.uniform(0.1, 30, size=(2000, 1))
    query = rng.normal(size=(300, 128)) * rng.uniform(0.1, 30, size=(300, 1))
    screen = np.hstack([-2 * train, (train**2).sum(axis=1, keepdims=True)]).astype(np.float32)
    screened = np.hstack([query, np.ones((300, 1))]).astype(np.float32) @ screen.T
    exact = (train**2).sum(axis=1)[None, :] - 2 * query @ train.T
    t_max = np.sqrt((train**2).sum(axis=1).max())
    bound = neighbours.screen_bound(torch.as_tensor(np.linalg.norm(query, axis=1)), t_max, 128).numpy()
    assert (np.abs(screened - exact) <= bound[:, None]).all()
    assert bound.max() < 1e-3 * (t_max + np.linalg.norm(query, axis=1).max()) ** 2
