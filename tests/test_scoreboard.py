"""Results files and the scoreboard: the main score is each model's best protocol by the score's sense, a results
file validates against its schema (and nothing that is not a finite number passes), and the comparison of two
models on the same galaxies tells a reseed from a real lead."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from sklearn.metrics import r2_score

from astroclip_eval.io.atomic import json_text
from astroclip_eval.report.scoreboard import best_rows, board, comparisons, config_hash, record, table_frame, validate
from astroclip_eval.tasks.kinds import KINDS, Main

SCHEMA = ROOT / "workflow/schemas/results.schema.yaml"
KIND = {kind.name: kind for kind in KINDS}
TABLES = {t.name: t for kind in KINDS for t in kind.tables}
PAIRS = [("spectrum", "spectrum"), ("spectrum", "image"), ("image", "spectrum"), ("image", "image")]


def _redshift_tables(rng: np.random.Generator, n: int = 400) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """A model's redshift tables and predictions: three protocols, four pairs, scores from its own predictions."""
    truth = rng.uniform(0.01, 0.8, n)
    rows, metrics, predictions = [], [], []
    for p, protocol in enumerate(("reproduction", "zero_shot", "few_shot")):
        for q, t in PAIRS:
            pred = truth + rng.normal(0, 0.02 * (1 + p) * (1 if q == t else 3), n)
            r2 = r2_score(truth, pred)
            rows.append({"protocol": protocol, "query": q, "target": t, "r2": r2, "r2_lo": r2 - 0.01, "r2_hi": r2 + 0.01})
            dz = (pred - truth) / (1 + truth)
            nmad = 1.4826 * np.median(np.abs(dz - np.median(dz)))
            metrics.append({"protocol": protocol, "query": q, "target": t, "sigma_nmad": nmad, "sigma_nmad_lo": nmad * 0.9,
                            "sigma_nmad_hi": nmad * 1.1})
            predictions.append(pd.DataFrame({"row": np.arange(n), "label": "redshift", "protocol": protocol, "query": q,
                                             "target": t, "true": truth, "predicted": pred}))
    return {"redshift_r2": pd.DataFrame(rows), "redshift_metrics": pd.DataFrame(metrics)}, pd.concat(predictions)


def test_the_main_score_is_the_best_protocol_by_its_sense():
    frame = pd.DataFrame({"protocol": ["a", "b", "a", "b"], "query": ["spectrum", "spectrum", "image", "image"],
                          "target": ["spectrum"] * 4, "r2": [0.5, 0.7, 0.4, 0.3], "width": [0.2, 0.1, 0.3, 0.4],
                          "coverage": [0.60, 0.70, 0.50, 0.90]})
    assert best_rows(Main("r2", "R^2"), frame)["protocol"].tolist() == ["b", "a"]
    assert best_rows(Main("width", "w", lower=True), frame)["protocol"].tolist() == ["b", "a"]
    assert best_rows(Main("coverage", "c", ideal=0.68), frame)["protocol"].tolist() == ["b", "a"]


def test_a_results_file_validates_and_a_nan_does_not(tmp_path):
    frames, _ = _redshift_tables(np.random.default_rng(0))
    dataset = tmp_path / "survey.h5"
    dataset.write_bytes(b"x" * 1234)
    config = {"redshift": {"protocols": ["reproduction", "zero_shot", "few_shot"]}}
    checkpoint = {"sha256": "a" * 64, "source": "out/run/astroclip-epoch=3-min.ckpt", "architecture": "reference",
                  "epoch": 3, "score": 1.0}
    results = record("dim16", KIND["redshift"], frames, checkpoint, dataset, "c" * 64, {"n_rows": 500, "n_valid": 480},
                     config, 12.5)
    validate(results, SCHEMA)
    json.dumps(results, allow_nan=False)  # plain JSON
    assert results["dataset"] == {"name": "survey.h5", "bytes": 1234, "targetids_sha256": "c" * 64, "validation_rows": 500,
                                  "valid_rows": 480}
    assert results["harness"]["config_sha256"] == config_hash(config) != config_hash({"redshift": {}})
    r2 = frames["redshift_r2"]
    for modality in ("spectrum", "image"):
        (main,) = [m for m in results["main"] if m["score"] == "r2" and m["query"] == modality]
        assert main["value"] == r2[r2["query"] == modality]["r2"].max()  # the best over protocol and target
        (nmad,) = [m for m in results["main"] if m["score"] == "sigma_nmad" and m["query"] == modality]
        metrics = frames["redshift_metrics"]
        assert nmad["value"] == metrics[metrics["query"] == modality]["sigma_nmad"].min()  # lower is better
    stored = json.loads(json_text(results))  # as the file holds it: keys sorted, columns in their order
    assert table_frame(stored, "redshift_r2").equals(r2) and list(table_frame(stored, "redshift_r2").columns) == list(r2)
    r2_at = results["tables"]["redshift_r2"]["columns"].index("r2")
    results["tables"]["redshift_r2"]["rows"][0][r2_at] = float("nan")
    with pytest.raises(ValueError, match=f"tables/redshift_r2/rows/0/{r2_at}: not a finite number"):
        validate(results, SCHEMA)
    results["tables"]["redshift_r2"]["rows"][0][r2_at] = 0.5
    results["checkpoint"]["sha256"] = "not a hash"
    with pytest.raises(ValueError, match="at checkpoint/sha256"):
        validate(results, SCHEMA)


def test_the_lead_of_a_model_over_itself_reseeded_is_not_resolved(tmp_path):
    """Two models whose predictions differ only by the seed of their noise: the best - next comparison on the
    same galaxies is not resolved; a model with a quarter of the noise is resolved as the better one."""
    truth = np.random.default_rng(1).uniform(0.01, 0.8, 400)
    seeded = {}
    for model, seed, scale in (("dim16", 10, 0.05), ("dim16-reseeded", 11, 0.05), ("dim128", 12, 0.0125)):
        noise = np.random.default_rng(seed).normal(0, scale, 400)
        seeded[model] = pd.DataFrame({"row": np.arange(400), "label": "redshift", "protocol": "zero_shot",
                                      "query": "spectrum", "target": "spectrum", "true": truth, "predicted": truth + noise})

    def main_rows(model: str) -> dict:
        pred = seeded[model]
        r2 = r2_score(pred["true"], pred["predicted"])
        return {"model": model, "main": [{"table": "redshift_r2", "score": "r2", "title": "redshift R^2", "label": "",
                                          "query": "spectrum", "protocol": "zero_shot", "target": "spectrum",
                                          "value": r2, "lo": r2 - 0.01, "hi": r2 + 0.01}]}
    dims = {"dim16": 16, "dim16-reseeded": 16, "dim128": 128}
    twins = board([main_rows("dim16"), main_rows("dim16-reseeded")], dims)
    (same,) = comparisons(TABLES["redshift_r2"], twins, {m: seeded[m] for m in ("dim16", "dim16-reseeded")})
    assert not same["resolved"] and same["lo"] < 0 < same["hi"]
    everyone = board([main_rows(m) for m in dims], dims)
    assert everyone["model"].tolist() == ["dim16", "dim16-reseeded", "dim128"]
    (lead,) = comparisons(TABLES["redshift_r2"], everyone, seeded)
    assert lead["best"] == "dim128" and lead["resolved"] and lead["lo"] > 0
