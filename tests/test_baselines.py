"""Baselines (a feature set from a catalogue scored as an embedding): the features in the label table, their scores
against scikit-learn on the same rows, each model's paired difference to them, and one line per bad input."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, protocols
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from astroclip_eval.io.config import check
from astroclip_eval.io.errors import UserError
from astroclip_eval.report.scoreboard import against_baselines, board
from astroclip_eval.tasks import baselines, labels
from astroclip_eval.tasks.bootstrap import r2 as r2_draws
from astroclip_eval.tasks.kinds import KINDS

TABLES = {t.name: t for kind in KINDS for t in kind.tables}
ENTRY = {"catalogue": "pv", "columns": ["MAG_G", "MAG_R", "MAG_Z"]}
PROTOCOLS = protocols(run=["reproduction", "zero_shot", "few_shot"], reproduction_neighbours=8,
                      zero_shot_neighbours=[8, 32])


def _config(**catalogue) -> dict:
    return {"catalogues": {"pv": {"path": "x.hdf5", "key": "TARGETID", **catalogue}},
            "properties": {"mass": {"catalogue": "pv", "column": "LOG_MSTAR"}}, "classifications": {},
            "baselines": {"photometry": ENTRY}}


def _columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Magnitudes that carry the redshift and the mass, with noise."""
    z = rng.uniform(0.02, 0.6, n)
    mass = rng.normal(10.5, 0.5, n)
    mags = {b: 21 + 5 * np.log10(z / 0.1) - (mass - 10.5) * s + rng.normal(0, 0.2, n)
            for b, s in (("MAG_G", 0.8), ("MAG_R", 1.0), ("MAG_Z", 1.2))}
    return {"LOG_MSTAR": mass, **{f"MAG_{b[-1]}": v for b, v in mags.items()}, "z": z}


def _split(rng: np.random.Generator, n: int, unmatched: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One split's (label table, redshifts, valid rows): every `unmatched`-th row is not in the catalogue."""
    cols = _columns(rng, n)
    matched = np.arange(n) % unmatched != 0
    table, _, _ = labels.label_table(_config(), {"pv": cols}, {"pv": matched})
    table.insert(1, "targetid", 1000 + np.arange(n))
    return table, cols["z"], np.flatnonzero(np.arange(n) % 11 != 5)  # some rows invalid


def test_features_are_columns_of_the_label_table_and_sentinels_leave_a_row_without_them():
    cols = {"LOG_MSTAR": np.array([10.0, 10.5, 11.0, 9.5]), "MAG_G": np.array([19.0, -999.0, 18.0, 17.0]),
            "MAG_R": np.array([18.5, 18.0, 17.5, 16.5]), "MAG_Z": np.array([18.0, 17.5, 17.0, 16.0])}
    table, dropped, undefined = labels.label_table(_config(sentinels=[-999]), {"pv": cols},
                                                   {"pv": np.array([True, True, True, False])})
    features = table[labels.feature_columns("photometry", ENTRY)].to_numpy()
    np.testing.assert_array_equal(features[0], [19.0, 18.5, 18.0])
    assert np.isnan(features[1]).all() and np.isnan(features[3]).all()  # a failed fit; a row the catalogue lacks
    assert table["mass"].tolist()[:3] == [10.0, 10.5, 11.0]  # the baseline's sentinel drops no label
    assert undefined["baseline:photometry"] == 1 and dropped == {"pv": {"sentinel -999": 0}}


@pytest.mark.parametrize("value, fragment", [(np.nan, "not a finite number"), (np.inf, "not a finite number")])
def test_a_non_finite_feature_on_a_matched_row_is_refused_naming_the_key(value, fragment):
    cols = {"LOG_MSTAR": np.ones(3) * 10, "MAG_G": np.array([19.0, value, 18.0]), "MAG_R": np.ones(3) * 18,
            "MAG_Z": np.ones(3) * 17}
    with pytest.raises(UserError, match=rf"^baselines\.photometry\.columns: 1 matched rows .*MAG_G.*{fragment}"):
        labels.label_table(_config(), {"pv": cols}, {"pv": np.ones(3, dtype=bool)})
    cols["MAG_G"] = np.array(["a", "b", "c"], dtype=object)
    with pytest.raises(UserError, match=r"^baselines\.photometry\.columns: column MAG_G .* holds text"):
        labels.label_table(_config(), {"pv": cols}, {"pv": np.ones(3, dtype=bool)})


def test_the_config_refuses_a_baseline_named_as_a_model_and_an_unknown_catalogue(tmp_path):
    from yaml import safe_load

    config = safe_load((ROOT / "config/config.yaml").read_text())
    config["baselines"]["dim16"] = config["baselines"]["photometry"]
    with pytest.raises(UserError, match=r"^config: 'baselines\.dim16' has a model's name"):
        check(config, ROOT / "workflow/schemas/config.schema.yaml")
    config = safe_load((ROOT / "config/config.yaml").read_text())
    config["baselines"]["photometry"]["catalogue"] = "sdss"
    with pytest.raises(UserError, match=r"^config: baselines\.photometry\.catalogue: catalogue 'sdss' is not in"):
        check(config, ROOT / "workflow/schemas/config.schema.yaml")


def test_zero_shot_equals_scikit_learns_scaled_distance_weighted_knn_on_the_rows_with_features():
    rng = np.random.default_rng(5)
    valid, train = _split(rng, 300, unmatched=7), _split(rng, 900, unmatched=9)
    found = baselines.score("photometry", ENTRY, valid, train, ["mass"], [], PROTOCOLS, draws=200)
    columns = labels.feature_columns("photometry", ENTRY)
    have = {}
    for name, (table, _, rows) in (("valid", valid), ("train", train)):
        have[name] = rows[table[columns].iloc[rows].notna().all(axis=1).to_numpy()]
        assert 0 < have[name].size < rows.size
    x_train, x_valid = train[0][columns].to_numpy()[have["train"]], valid[0][columns].to_numpy()[have["valid"]]
    scaler = StandardScaler().fit(x_train)
    r2 = found["redshift_r2"].set_index("protocol")
    assert set(found["redshift_r2"]["query"]) == {"features"} == set(found["redshift_r2"]["target"])
    for k in (8, 32):
        knn = KNeighborsRegressor(k, weights="distance").fit(scaler.transform(x_train), train[1][have["train"]])
        expected = r2_score(valid[1][have["valid"]], knn.predict(scaler.transform(x_valid)))
        assert r2.loc[f"zero_shot@{k}", "r2"] == pytest.approx(expected, abs=1e-9)
        mass = KNeighborsRegressor(k, weights="distance").fit(
            scaler.transform(x_train), train[0]["mass"].to_numpy()[have["train"]])
        got = found["properties_r2"].set_index("protocol").loc[f"zero_shot@{k}"]
        expected = r2_score(valid[0]["mass"].to_numpy()[have["valid"]], mass.predict(scaler.transform(x_valid)))
        assert got["n"] == have["valid"].size and got["r2"] == pytest.approx(expected, abs=1e-9)
    predictions = found["redshift_predictions"]
    assert sorted(set(predictions["row"])) == have["valid"].tolist()
    assert (predictions["targetid"] == 1000 + predictions["row"]).all()
    assert r2.loc["few_shot", "r2"] > 0.5 and "reproduction" not in r2.index  # the colours carry the redshift


def test_without_features_on_any_valid_row_the_baseline_is_refused():
    rng = np.random.default_rng(6)
    table, z, rows = _split(rng, 50, unmatched=7)
    rows = rows[rows % 7 == 0]  # only rows the catalogue lacks
    with pytest.raises(UserError, match=r"^baselines\.photometry: none of the \d+ valid rows of labels\.csv"):
        baselines.score("photometry", ENTRY, (table, z, rows), (table, z, rows), [], [], PROTOCOLS)
    with pytest.raises(UserError, match=r"^baselines\.photometry: a baseline is scored by zero_shot or few_shot"):
        baselines.score("photometry", ENTRY, (table, z, rows), (table, z, rows), [], [],
                        replace(PROTOCOLS, run=("reproduction",)))


def test_each_models_paired_difference_to_a_baseline_is_on_the_galaxies_both_scored():
    """The model scores 400 galaxies, the baseline 300 of them: the difference is the model's R^2 minus the
    baseline's on those 300, its interval from resampling them in pairs."""
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.01, 0.8, 400)
    model = truth + rng.normal(0, 0.03, 400)
    colours = truth + rng.normal(0, 0.08, 400)
    shared = np.arange(100, 400)

    def predictions(rows, pred, query):
        return pd.DataFrame({"row": rows, "label": "redshift", "protocol": "zero_shot@16", "query": query,
                             "target": query, "true": truth[rows], "predicted": pred[rows]})

    def board_row(model, query, value):
        return {"model": model, "main": [{"table": "redshift_r2", "score": "r2", "title": "redshift R^2", "label": "",
                                          "query": query, "protocol": "zero_shot@16", "target": query,
                                          "value": value, "lo": value, "hi": value}]}

    mine = r2_score(truth, model)
    scores = board([board_row("dim16", "spectrum", mine)], {"dim16": 16})
    theirs = board([board_row("photometry", "features", r2_score(truth[shared], colours[shared]))], {"photometry": 3})
    (found,) = against_baselines(TABLES["redshift_r2"], scores, theirs,
                                 {"dim16": predictions(np.arange(400), model, "spectrum"),
                                  "photometry": predictions(shared, colours, "features")}, draws=500)
    expected = r2_score(truth[shared], model[shared]) - r2_score(truth[shared], colours[shared])
    assert found["n"] == 300 and found["difference"] == pytest.approx(expected, abs=1e-12)
    assert found["lo"] < expected < found["hi"] and found["resolved"]
    assert found["value"] == pytest.approx(mine) and found["baseline"] == "photometry"
    draws = np.random.default_rng(0).integers(0, 300, (500, 300))  # an independent paired bootstrap's spread
    spread = r2_draws(truth[shared][draws], model[shared][draws]) - r2_draws(truth[shared][draws], colours[shared][draws])
    assert found["hi"] - found["lo"] == pytest.approx(np.subtract(*np.percentile(spread, [97.5, 2.5])), rel=0.3)
