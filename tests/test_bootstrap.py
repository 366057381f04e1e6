"""Bootstrap intervals and paired comparisons: the intervals cover what they claim, each resampled score equals an
independent computation on the same resample, and a paired comparison tells a real difference from a reseed."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score

from astroclip_eval.tasks import bootstrap
from astroclip_eval.tasks.redshift import redshift_metrics
from astroclip_eval.tasks.retrieval import retrieval_table

DEMO_ROWS = 1582  # the demo's valid validation rows


def test_the_interval_of_a_mean_covers_the_truth_95_percent_of_the_time():
    """1,000 seeded trials at demo size, each a fresh sample from a normal of mean 0.3 and its own 1,000 resamples:
    the percentile interval holds 0.3 in 95 +- 2% of them (the binomial spread of 1,000 trials is 0.7%)."""
    covered = 0
    for trial in range(1000):
        sample = np.random.default_rng(trial).normal(0.3, 1.0, DEMO_ROWS)
        lo, hi = bootstrap.bounds(lambda x: x.mean(axis=-1), (sample,), 1000, trial)
        covered += lo <= 0.3 <= hi
    assert 0.93 <= covered / 1000 <= 0.97, covered


def test_each_resampled_score_is_the_score_of_that_resample():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.01, 0.8, 500)
    pred = truth + rng.normal(0, 0.05, 500) * (1 + truth)
    classes, guessed = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    guessed[:300] = classes[:300]
    (idx,) = bootstrap.resamples(500, 20, seed=3)  # one chunk of 20 resamples
    assert idx.shape == (20, 500)
    for i in idx:
        dz = (pred[i] - truth[i]) / (1 + truth[i])
        assert bootstrap.r2(truth[None, i], pred[None, i])[0] == pytest.approx(r2_score(truth[i], pred[i]), abs=1e-12)
        assert bootstrap.f1_weighted(classes[None, i], guessed[None, i])[0] == pytest.approx(
            f1_score(classes[i], guessed[i], average="weighted"), abs=1e-12)
        assert bootstrap.f1_macro(classes[None, i], guessed[None, i])[0] == pytest.approx(
            f1_score(classes[i], guessed[i], average="macro"), abs=1e-12)
        assert bootstrap.balanced_accuracy(classes[None, i], guessed[None, i])[0] == pytest.approx(
            balanced_accuracy_score(classes[i], guessed[i]), abs=1e-12)
        assert bootstrap.sigma68(truth[None, i], pred[None, i])[0] == pytest.approx(
            (np.percentile(dz, 84) - np.percentile(dz, 16)) / 2, abs=1e-15)
        assert bootstrap.sigma_nmad(truth[None, i], pred[None, i])[0] == pytest.approx(
            1.4826 * np.median(np.abs(dz - np.median(dz))), abs=1e-15)
    scores = [r2_score(truth[i], pred[i]) for i in idx]
    assert bootstrap.distribution(bootstrap.r2, (truth, pred), 20, seed=3) == pytest.approx(scores, abs=1e-12)
    lo, hi = bootstrap.bounds(bootstrap.r2, (truth, pred), 20, seed=3)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(scores, [0.025, 0.975])), abs=1e-12)


def test_the_same_rows_and_seed_draw_the_same_resamples():
    first = np.concatenate(list(bootstrap.resamples(40_000, 300, seed=7)))
    again = np.concatenate(list(bootstrap.resamples(40_000, 300, seed=7)))
    assert first.shape == (300, 40_000) and np.array_equal(first, again)
    assert not np.array_equal(first, np.concatenate(list(bootstrap.resamples(40_000, 300, seed=8))))


def test_a_model_against_itself_with_another_seed_is_not_resolved():
    """Two predictors that differ only by the seed of their noise are within each other's spread; one with half
    the noise is resolved as better; the interval of a difference holds the difference."""
    rng = np.random.default_rng(1)
    truth = rng.normal(size=DEMO_ROWS)
    seeds = [truth + 0.5 * np.random.default_rng(s).normal(size=DEMO_ROWS) for s in (10, 11)]
    same = bootstrap.paired(bootstrap.r2, (truth, seeds[0]), (truth, seeds[1]))
    assert not same["resolved"] and same["lo"] < 0 < same["hi"]
    better = truth + 0.25 * rng.normal(size=DEMO_ROWS)
    found = bootstrap.paired(bootstrap.r2, (truth, better), (truth, seeds[0]))
    assert found["resolved"] and found["lo"] <= found["difference"] <= found["hi"]
    assert found["difference"] == pytest.approx(r2_score(truth, better) - r2_score(truth, seeds[0]), abs=1e-12)
    # pairing removes what both share: the paired interval is narrower than the two unpaired ones side by side
    width = found["hi"] - found["lo"]
    unpaired = [np.subtract(*bootstrap.bounds(bootstrap.r2, (truth, p))[::-1]) for p in (better, seeds[0])]
    assert width < sum(unpaired)


def test_the_scores_tables_carry_their_intervals():
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.01, 0.8, 800)
    pred = truth + rng.normal(0, 0.03, 800)
    metrics = redshift_metrics(truth, pred, draws=200)
    for name in ("bias", "sigma_nmad", "sigma68", "outlier_fraction"):
        assert metrics[f"{name}_lo"] <= metrics[name] <= metrics[f"{name}_hi"], name
    ranks = {("spectrum", "image"): rng.integers(1, 50, 800), ("image", "spectrum"): rng.integers(1, 80, 800)}
    table = retrieval_table(ranks, draws=200)
    for score in ("top1", "top10", "median_rank"):
        assert (table[f"{score}_lo"] <= table[score]).all() and (table[score] <= table[f"{score}_hi"]).all()
