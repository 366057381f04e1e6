"""The paper's protocols against direct scikit-learn computations."""

import numpy as np
import pytest
from conftest import protocols
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from astroclip_eval.tasks import downstream, neighbours
from astroclip_eval.tasks.protocols import fit_few_shot, standardiser, weighted_knn
from astroclip_eval.tasks.redshift import evaluate

pytestmark = pytest.mark.numeric  # rerun under a second torch CPU kernel (tests/test_kernels.py)


@pytest.fixture
def split():
    rng = np.random.default_rng(7)

    def make(n):
        z = rng.uniform(0, 0.8, n)
        base = rng.normal(size=(n, 8))
        base[:, :2] += 6 * (z[:, None] - 0.4)
        return {"spectrum": base + 0.3 * rng.normal(size=(n, 8)), "image": base + 0.8 * rng.normal(size=(n, 8))}, z

    return make(600), make(200)


@pytest.mark.parametrize("block_bytes", [None, 600 * 8 * 23], ids=["one block", "blocks of 23 rows"])
def test_zero_shot_matches_scikit_learn(split, block_bytes, monkeypatch):
    if block_bytes:
        monkeypatch.setattr(neighbours, "BLOCK_BYTES", block_bytes)
    (train, z_train), (valid, z_valid) = split
    for query, target in (("spectrum", "spectrum"), ("image", "spectrum")):
        scaler = StandardScaler().fit(train[target])
        expected = KNeighborsRegressor(n_neighbors=64, weights="distance").fit(scaler.transform(train[target]), z_train)
        mean, std = standardiser(train[target])
        np.testing.assert_allclose(mean, scaler.mean_) and np.testing.assert_allclose(std, scaler.scale_)
        ours = weighted_knn((train[target] - mean) / std, z_train, (valid[query] - mean) / std, 64)
        np.testing.assert_allclose(ours, expected.predict(scaler.transform(valid[query])), rtol=1e-9)


def test_zero_shot_exact_match_takes_that_row():
    train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    z = np.array([0.1, 0.5, 0.7])
    pred = weighted_knn(train, z, np.array([[1.0, 0.0], [0.5, 0.0]]), k=2)
    assert pred[0] == 0.5 and pred[1] == pytest.approx(0.3)  # equidistant from rows 0 and 1


def test_few_shot_is_seeded_and_learns(split):
    (train, z_train), (valid, z_valid) = split
    mean, std = standardiser(train["spectrum"])
    a = fit_few_shot((train["spectrum"] - mean) / std, z_train, seed=3)((valid["spectrum"] - mean) / std)
    b = fit_few_shot((train["spectrum"] - mean) / std, z_train, seed=3)((valid["spectrum"] - mean) / std)
    np.testing.assert_array_equal(a, b)
    assert 1 - np.sum((a - z_valid) ** 2) / np.sum((z_valid - z_valid.mean()) ** 2) > 0.7


def _evaluate(split, run, seed=0, k=64):
    """The redshift task through the downstream core, every row valid."""
    (train, z_train), (valid, z_valid) = split
    return evaluate(valid, z_valid, np.arange(z_valid.size), protocols(run=run, zero_shot_neighbours=k, few_shot_seed=seed),
                    (train, z_train, np.arange(z_train.size)))


def test_table_has_a_row_per_protocol_and_pair(split):
    table, metrics, predictions = _evaluate(split, ["zero_shot", "few_shot"], k=16)
    keys = [[p, q, t] for p in ("zero_shot", "few_shot") for q in ("spectrum", "image") for t in ("spectrum", "image")]
    assert table[["protocol", "query", "target"]].values.tolist() == keys
    assert metrics[["protocol", "query", "target"]].values.tolist() == keys
    assert set(predictions) == {tuple(key) for key in keys}
    assert table["r2"].between(0.3, 1.0).all()


def test_few_shot_is_fitted_once_per_target_and_asked_about_both_queries(split, monkeypatch):
    """One network per target modality, asked about both query modalities; for the redshift it learns z itself."""
    (train, z_train), (valid, _) = split
    fitted = []

    def counting(x_train, z, **how):
        fitted.append(x_train)
        return fit_few_shot(x_train, z, **how)

    monkeypatch.setattr(downstream, "fit_few_shot", counting)
    _, _, predictions = _evaluate(split, ["few_shot"], seed=5)
    assert len(fitted) == 2
    for target in ("spectrum", "image"):
        mean, std = standardiser(train[target])
        predict = fit_few_shot((train[target] - mean) / std, z_train, seed=5)
        for query in ("spectrum", "image"):
            np.testing.assert_array_equal(predictions[("few_shot", query, target)], predict((valid[query] - mean) / std))


def test_few_shot_scores_like_scikit_learns_mlp(split):
    """The same in-modal task for scikit-learn's MLPRegressor (two hidden layers of 64, Adam, batches of 200, 300
    epochs), over five seeds: our network (early-stopped) is at least as good as their mean less 0.05 (it is above
    it: 0.75 against 0.70 from spectra, 0.68 against 0.64 from images).

    Cross-modal scores are left out: they measure how each network extrapolates to the other modality's coordinates.
    """
    (train, z_train), (valid, z_valid) = split
    table, _, _ = _evaluate(split, ["few_shot"])
    for modality in ("spectrum", "image"):
        scaler = StandardScaler().fit(train[modality])
        theirs = [
            r2_score(z_valid, MLPRegressor(hidden_layer_sizes=(64, 64), learning_rate_init=3e-3, alpha=1e-4, max_iter=300,
                                           random_state=seed).fit(scaler.transform(train[modality]), z_train)
                     .predict(scaler.transform(valid[modality])))
            for seed in range(5)
        ]
        ours = table.query("query == @modality and target == @modality")["r2"].item()
        assert ours > np.mean(theirs) - 0.05, (modality, ours, theirs)


def test_few_shot_stops_when_the_held_out_rows_stop_improving(monkeypatch):
    """Labels that are pure noise: nothing to learn, so the held-out tenth stops improving at once and training ends
    after `patience` epochs or a few more, far from the 200 allowed; the weights kept are the best epoch's."""
    import torch

    from astroclip_eval.tasks import protocols

    steps = []
    step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k))
    rng = np.random.default_rng(4)
    x, noise = rng.normal(size=(1000, 8)), rng.normal(size=1000)
    predict = fit_few_shot(x, noise, seed=1)
    per_epoch = -(-900 // protocols.RECIPES["project"].batch)  # 900 rows trained on, the rest held out
    epochs = len(steps) / per_epoch
    assert protocols.RECIPES["project"].patience < epochs <= 40, epochs
    assert np.std(predict(rng.normal(size=(500, 8)))) < 0.3  # the best epoch knew it knows nothing


def _votes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and the vote fractions of three answers whose chances follow them (30 volunteers on average)."""
    x = rng.normal(size=(n, 12))
    logits = np.column_stack([x[:, 0] + 0.5 * x[:, 1], x[:, 2] - x[:, 0], 0.3 * x[:, 3]])
    chances = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    votes = np.stack([rng.multinomial(m, p) for m, p in zip(rng.poisson(30, n) + 3, chances)])
    return x, votes / votes.sum(axis=1, keepdims=True)


def _original_loop(x: np.ndarray, fractions: np.ndarray, query: np.ndarray, seed: int) -> np.ndarray:
    """The original AstroCLIP's morphology head as protocol facts describe it, written out on its own: three hidden
    layers of 256 with dropout 0.2 and ReLU, 10% held out, rows drawn by a WeightedRandomSampler on their largest
    fraction, batches of 256, Adam 1e-3, 25 epochs of cross-entropy against the fractions, best held-out epoch."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    torch.manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    held, fit = order[: len(x) // 10], order[len(x) // 10:]
    tx, ty = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(fractions, dtype=torch.float32)
    layers, width = [], x.shape[1]
    for _ in range(3):
        layers += [torch.nn.Linear(width, 256), torch.nn.Dropout(0.2), torch.nn.ReLU()]
        width = 256
    net = torch.nn.Sequential(*layers, torch.nn.Linear(256, fractions.shape[1]))
    loader = DataLoader(TensorDataset(tx[fit], ty[fit]), batch_size=256,
                        sampler=WeightedRandomSampler(ty[fit].max(dim=1).values, len(fit)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    best, kept = np.inf, None
    for _ in range(25):
        net.train()
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(net(tx[held]), ty[held]))
        if loss < best:
            best, kept = loss, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(kept)
    with torch.no_grad():
        return net(torch.as_tensor(query, dtype=torch.float32)).argmax(dim=1).numpy()


def test_the_vote_fraction_recipe_is_the_original_morphology_head():
    """Trained on the vote fractions by VOTE_FRACTIONS, the accuracy on the answer with the largest fraction equals
    an independent loop of the original's description within the seeds' spread (three seeds each; 0.865-0.872
    against 0.868-0.875 on 3,000 rows, 2026-12-07), and learns more than the majority guesser (0.44)."""
    from astroclip_eval.tasks.protocols import VOTE_FRACTIONS, VOTE_FRACTIONS_HIDDEN

    rng = np.random.default_rng(11)
    x, fractions = _votes(3000, rng)
    x_test, f_test = _votes(1000, rng)
    truth = f_test.argmax(axis=1)
    ours = [np.mean(fit_few_shot(x, fractions, seed=s, classes=3, hidden=VOTE_FRACTIONS_HIDDEN,
                                 recipe=VOTE_FRACTIONS)(x_test) == truth) for s in range(3)]
    theirs = [np.mean(_original_loop(x, fractions, x_test, seed=s) == truth) for s in range(3)]
    spread = max(np.ptp(ours), np.ptp(theirs), 0.01)
    assert abs(np.mean(ours) - np.mean(theirs)) <= spread, (ours, theirs)
    assert min(ours) > np.bincount(truth).max() / truth.size + 0.2, (ours, np.bincount(truth))
