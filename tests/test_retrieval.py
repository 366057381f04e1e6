"""Cross-modal retrieval against a brute-force ranking, and its table."""

import numpy as np
import pytest

from astroclip_eval.tasks import neighbours
from astroclip_eval.tasks.retrieval import own_ranks, retrieval_ranks, retrieval_table

pytestmark = pytest.mark.numeric  # rerun under a second torch CPU kernel (tests/test_kernels.py)


def _brute_ranks(query: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Position of the own row in a full stable sort of each query's cosines, ties resolved in its favour."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    sims = (q @ t.T).astype(np.float32)
    out = []
    for i, row in enumerate(sims):
        better = np.flatnonzero(row > row[i])
        out.append(better.size + 1)
    return np.array(out)


@pytest.fixture
def paired():
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(500, 8))
    return {"image": shared + 0.8 * rng.normal(size=(500, 8)), "spectrum": 2.0 * shared + 1.2 * rng.normal(size=(500, 8))}


def test_ranks_match_brute_force_in_blocks(paired, monkeypatch):
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 4 * 37 * 500 * 4)  # 37-row blocks: the last one is partial
    ranks = own_ranks(paired["spectrum"], paired["image"])
    assert np.array_equal(ranks, _brute_ranks(paired["spectrum"], paired["image"]))
    assert own_ranks(paired["image"], paired["image"]).max() == 1  # every row is its own best match


def test_table_over_valid_rows(paired):
    valid = np.sort(np.random.default_rng(0).choice(500, 420, replace=False))
    ranks = retrieval_ranks(paired, valid)
    table = retrieval_table(ranks).set_index(["query", "target"])
    for qm, tm in (("spectrum", "image"), ("image", "spectrum")):
        brute = _brute_ranks(paired[qm][valid], paired[tm][valid])
        row = table.loc[(qm, tm)]
        assert row["n"] == 420
        assert row["top1"] == pytest.approx(np.mean(brute == 1))
        assert row["top10"] == pytest.approx(np.mean(brute <= 10))
        assert row["median_rank"] == np.median(brute)
        assert 0.1 < row["top10"] < 0.9  # the fixture is neither trivial nor hopeless
