"""Every kind on the tiny test config (its catalogue kinds at toy size), so a change to one is checked in the tiny
run's minutes: the scores against independent computations, the rows each kind scores counted from the catalogues."""

import numpy as np
import pandas as pd
import pytest
from conftest import protocols, tiny_config
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from astroclip_eval.io.files import load_embeddings, load_indices

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tiny")]  # one worker runs the tiny config once


def _split(tiny, prefix: str = ""):
    cache = tiny / "cache"
    emb = load_embeddings(str(cache / f"tiny/{prefix}image_embeddings.pt"), str(cache / f"tiny/{prefix}spectrum_embeddings.pt"))
    rows = load_indices(str(cache / f"{prefix}valid_indices.pt"))
    labels = pd.read_csv(cache / f"catalogues/{prefix}labels.csv")
    return emb, rows, labels


def test_every_kind_runs_on_the_tiny_config(tiny):
    config = tiny_config()
    results = tiny / "results/tiny"
    (emb, rows, labels), (train, train_rows, train_labels) = _split(tiny), _split(tiny, "train_")
    k = protocols().zero_shot_neighbours  # the schema's: the tiny config leaves it

    props = pd.read_csv(results / "properties_r2.csv").set_index(["protocol", "property", "query", "target"])
    assert set(props.index.get_level_values("property")) == set(config["properties"])
    assert set(props.index.get_level_values("protocol")) == {"reproduction", "zero_shot", "few_shot"}
    for name in config["properties"]:  # zero_shot in-modal: scikit-learn's distance-weighted kNN after a StandardScaler
        v = rows[labels[name].iloc[rows].notna().to_numpy()]
        t = train_rows[train_labels[name].iloc[train_rows].notna().to_numpy()]
        for modality in ("spectrum", "image"):
            x_train, x_valid = train[modality][t].astype(np.float64), emb[modality][v].astype(np.float64)
            scaler = StandardScaler().fit(x_train)
            knn = KNeighborsRegressor(k, weights="distance").fit(scaler.transform(x_train), train_labels[name].iloc[t])
            expected = r2_score(labels[name].iloc[v], knn.predict(scaler.transform(x_valid)))
            got = props.loc[("zero_shot", name, modality, modality)]
            assert int(got["n"]) == v.size and got["r2"] == pytest.approx(expected, abs=1e-7), (name, modality)

    question = next(iter(config["classifications"]))
    classes = pd.read_csv(results / "classification.csv")
    assert set(classes["question"]) == {question}
    assert (classes["n"] == int(labels[question].iloc[rows].notna().sum())).all() and classes["n"].iloc[0] > 0
    assert classes["accuracy"].between(0, 1).all()

    r2 = pd.read_csv(results / "redshift_r2.csv").set_index(["protocol", "query", "target"])["r2"]
    budgets = pd.read_csv(results / "budgets.csv").set_index(["protocol", "modality", "fraction"])
    assert sorted(budgets.index.get_level_values("fraction").unique()) == config["budgets"]["fractions"]
    for modality in ("spectrum", "image"):  # the whole split's zero_shot is the redshift table's, by its own path
        whole = budgets.loc[("zero_shot", modality, 1.0), "r2_mean"]
        assert whole == pytest.approx(r2[("zero_shot", modality, modality)], abs=1e-9)

    posteriors = pd.read_csv(results / "posteriors.csv")
    assert posteriors["label"].tolist() == ["redshift"] * 2 and (posteriors["n"] == rows.size).all()
    assert posteriors[["coverage68", "coverage95"]].stack().between(0, 1).all()
    assert (posteriors["coverage95"] >= posteriors["coverage68"]).all()
    joint = pd.read_csv(results / "posteriors_joint.csv")
    both = int(labels[config["posteriors"]["joint"]["labels"]].iloc[rows].notna().all(axis=1).sum())
    assert (joint["members"] == 1).all() and (joint["n"] == both).all() and np.isfinite(joint["nll"]).all()

    baseline = pd.read_csv(tiny / "results/baselines/photometry/redshift_r2.csv")
    assert np.isfinite(baseline["r2"]).all()
