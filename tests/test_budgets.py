"""Label budgets: the subsets are nested and seeded, the linear probe is scikit-learn's RidgeCV on the same folds, and
the curves on a case with a known answer rise to it."""

import math

import numpy as np
import pytest
from conftest import ROOT, protocols
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from astroclip_eval.io.config import section_defaults
from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks.budgets import ALPHAS, FOLDS, MIN_ROWS, Budget, evaluate, ridge_cv, subsets


def budget(**given) -> Budget:
    """The budgets section as a config giving only `given` gets it (the rest the schema's defaults)."""
    return Budget.of({**section_defaults(ROOT / "workflow/schemas/config.schema.yaml", "budgets"), **given})


def test_subsets_are_nested_seeded_and_differ_between_repeats():
    fractions = [0.01, 0.05, 0.1, 0.2, 0.5, 1.0]
    drawn = subsets(5000, fractions, repeats=4, seed=7)
    assert [[len(s) for s in r] for r in drawn] == [[max(MIN_ROWS, math.ceil(f * 5000)) for f in fractions]] * 4
    for repeat in drawn:
        for small, large in zip(repeat, repeat[1:]):
            assert set(small) <= set(large)  # nested
        assert np.array_equal(repeat[-1], np.arange(5000)) and all(np.all(np.diff(s) > 0) for s in repeat)
    again = subsets(5000, fractions, repeats=4, seed=7)
    assert all(np.array_equal(a, b) for r, q in zip(drawn, again) for a, b in zip(r, q))  # seeded
    assert not np.array_equal(drawn[0][1], drawn[1][1])  # the repeats draw their own rows
    assert not np.array_equal(drawn[0][1], subsets(5000, fractions, repeats=1, seed=8)[0][1])


@pytest.mark.parametrize("n,d", [(53, 16), (400, 128), (2000, 16)])
def test_the_linear_probe_is_ridgecv_on_the_same_folds(n, d):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d))
    y = x[:, 0] * 0.5 - x[:, 1] + rng.normal(size=n) * (1 + 3 * (d > 100))
    alpha, coef, intercept = ridge_cv(x, y)
    theirs = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS)).fit(x, y)
    assert alpha == theirs.alpha_
    test = rng.normal(size=(50, d))
    assert np.abs(test @ coef + intercept - theirs.predict(test)).max() < 1e-9


def test_budget_curves_rise_to_the_known_answer():
    """y = x . w + noise with R^2 = 0.8 attainable: the ridge at the whole split is within 0.02 of it, its mean
    rises with the labels, one number where every repeat has the same rows, the MLP's seeds spread there."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=8)

    def split(n):
        x = rng.normal(size=(n, 8))
        return {"spectrum": x, "image": x + rng.normal(size=x.shape)}, x @ w + rng.normal(size=n) * np.sqrt(w @ w / 4)

    (v_emb, v_y), (t_emb, t_y) = split(600), split(2000)
    t_y[:100] = np.nan  # rows without the label take no part
    table = evaluate("y", v_emb, v_y, np.arange(600), t_emb, t_y, np.arange(2000),
                     budget(fractions=[0.01, 0.1, 1.0], repeats=3), protocols(zero_shot_neighbours=16))
    assert len(table) == 2 * 3 * 3 and set(table["n_train"]) == {19, 190, 1900}
    linear = table[(table["protocol"] == "linear") & (table["modality"] == "spectrum")].set_index("fraction")
    assert linear.loc[1.0, "r2_mean"] == pytest.approx(0.8, abs=0.02) and linear.loc[1.0, "r2_std"] == 0
    assert linear["r2_mean"].is_monotonic_increasing
    assert (table["r2_min"] <= table["r2_mean"]).all() and (table["r2_mean"] <= table["r2_max"]).all()
    knn = table[(table["protocol"] == "zero_shot") & (table["fraction"] == 1.0)]
    assert (knn["r2_std"] == 0).all()
    mlp = table[(table["protocol"] == "few_shot") & (table["fraction"] == 1.0)]
    assert (mlp["r2_std"] > 0).all()
    image = table[(table["protocol"] == "linear") & (table["modality"] == "image") & (table["fraction"] == 1.0)]
    assert image["r2_mean"].iloc[0] < linear.loc[1.0, "r2_mean"] - 0.1  # the noisier modality knows less


def test_too_few_labelled_rows_is_one_line():
    x = {"spectrum": np.zeros((30, 4)), "image": np.zeros((30, 4))}
    y = np.full(30, np.nan)
    y[:5] = 1.0
    with pytest.raises(UserError, match="budgets.labels: y has 5 labelled train rows"):
        evaluate("y", x, np.arange(30.0), np.arange(30), x, y, np.arange(30), budget(fractions=[1.0], repeats=1),
                 protocols(zero_shot_neighbours=64))
