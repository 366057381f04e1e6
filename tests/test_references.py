"""References beside scores: a published figure only against the score of its own protocol, modality and k, with a
verdict from the score's interval; a bound flagged wherever a score's whole interval exceeds it; a classifier whose
interval reaches the majority guesser's is "at baseline" on the scoreboard and never shaded as a lead."""

import matplotlib

matplotlib.use("Agg")
import pandas as pd
import pytest

from astroclip_eval.report.overview import SIMULATED_NOTE, at_baseline, reference_section, scoreboard_section
from astroclip_eval.report.plotting import reference_forest
from astroclip_eval.tasks.references import all_references, reference_table, verdict

PAIRS = [("spectrum", "spectrum"), ("spectrum", "image"), ("image", "spectrum"), ("image", "image")]
SCORES = {  # (model, protocol) -> in-modal spectrum R^2; image 0.1 lower, cross-modal 0.2 lower
    ("dim16", "reproduction"): 0.80, ("dim16", "zero_shot@16"): 0.87, ("dim16", "zero_shot@64"): 0.85,
    ("dim16", "few_shot"): 0.95, ("dim128", "reproduction"): 0.78, ("dim128", "zero_shot@16"): 0.83,
    ("dim128", "zero_shot@64"): 0.84, ("dim128", "few_shot"): 0.86,
}


def _properties() -> pd.DataFrame:
    rows = []
    for (model, protocol), r2 in SCORES.items():
        for q, t in PAIRS:
            value = r2 - (0.1 if q == "image" else 0) - (0.2 if q != t else 0)
            rows.append({"model": model, "embedding_dim": 16 if model == "dim16" else 128, "protocol": protocol,
                         "property": "mass", "query": q, "target": t, "n": 500, "r2": value, "r2_lo": value - 0.01,
                         "r2_hi": value + 0.01})
    return pd.DataFrame(rows)


CONFIG = {
    "representation": {"enabled": False},
    "protocols": {"run": ["reproduction", "zero_shot", "few_shot"], "reproduction_neighbours": 16,
                  "exclude_self": True, "zero_shot_neighbours": [16, 64], "few_shot_seed": 0, "few_shot_recipe": "project"},
    "properties": {"mass": {"references": {
        "paper spectrum": {"value": 0.875, "protocol": "zero_shot", "modality": "spectrum", "neighbours": 16},
        "paper image": {"value": 0.70, "protocol": "zero_shot", "modality": "image", "neighbours": 16},
        "other k": {"value": 0.80, "protocol": "zero_shot", "modality": "spectrum", "neighbours": 32},
        "no k": {"value": 0.80, "protocol": "zero_shot", "modality": "spectrum"},
        "reproduction at 16": {"value": 0.79, "protocol": "reproduction", "modality": "spectrum", "neighbours": 16},
        "ceiling": 0.90,
        "template fit": {"value": 0.86, "kind": "baseline"},
    }}},
    "classifications": {},
}


def test_verdicts_read_the_interval():
    assert verdict("published", 0.5, 0.45, 0.55) == "within"
    assert verdict("published", 0.4, 0.45, 0.55) == "above" and verdict("published", 0.6, 0.45, 0.55) == "below"
    assert verdict("bound", 0.5, 0.45, 0.55) == "holds" and verdict("bound", 0.44, 0.45, 0.55) == "exceeded"
    assert verdict("baseline", 0.4, 0.45, 0.55) == "above"


def test_a_published_figure_meets_only_the_score_of_its_protocol_modality_and_k():
    refs = reference_table(CONFIG, "properties", _properties(), "property", "r2").set_index(["reference", "model"])
    assert len(refs) == 7 * 2
    got = refs.loc[("paper spectrum", "dim16")]
    assert got["measured_by"] == "zero_shot@16, spectrum -> spectrum" and got["score"] == pytest.approx(0.87)
    assert got["verdict"] == "within"  # 0.875 in [0.86, 0.88]
    assert refs.loc[("paper spectrum", "dim128"), "verdict"] == "below"  # 0.83 [0.82, 0.84] against 0.875
    assert refs.loc[("paper image", "dim16"), "measured_by"] == "zero_shot@16, image -> image"
    assert refs.loc[("paper image", "dim16"), "verdict"] == "above"  # 0.77 [0.76, 0.78] against 0.70
    assert refs.loc[("other k", "dim16"), "verdict"] == "not measured: this run's zero_shot uses k = 16, 64"
    assert pd.isna(refs.loc[("other k", "dim16"), "score"]) and refs.loc[("other k", "dim16"), "measured_by"] == ""
    assert refs.loc[("no k", "dim16"), "verdict"].startswith("not measured: the reference names no k")
    # a bare protocol name takes its k from the config (reproduction runs k = 16 alone here)
    assert refs.loc[("reproduction at 16", "dim16"), "measured_by"] == "reproduction, spectrum -> spectrum"


def test_a_bound_that_a_whole_interval_exceeds_is_flagged_and_a_baseline_is_read_against_the_best():
    refs = reference_table(CONFIG, "properties", _properties(), "property", "r2").set_index(["reference", "model"])
    assert refs.loc[("ceiling", "dim16"), "verdict"] == "exceeded"  # few_shot 0.95 [0.94, 0.96] above 0.90
    assert refs.loc[("ceiling", "dim16"), "measured_by"] == "few_shot, spectrum -> spectrum"
    assert refs.loc[("ceiling", "dim128"), "verdict"] == "holds"  # 0.86 [0.85, 0.87]
    assert refs.loc[("template fit", "dim16"), "verdict"] == "above"
    assert refs.loc[("template fit", "dim128"), "verdict"] == "within"


def test_the_scoreboard_sets_each_model_s_like_for_like_score_under_a_published_figure(tmp_path):
    frames = {"properties_r2": _properties()}
    references = all_references(CONFIG, frames)
    best = frames["properties_r2"].sort_values("r2", ascending=False).drop_duplicates(["model", "query"])
    board = pd.DataFrame([{"model": r.model, "embedding_dim": r.embedding_dim, "table": "properties_r2", "score": "r2",
                           "title": "property R^2", "label": "mass", "query": r.query, "protocol": r.protocol,
                           "target": r.target, "value": r.r2, "lo": r.r2_lo, "hi": r.r2_hi, "baseline": None}
                          for r in best.itertuples()])
    compared = pd.DataFrame(columns=["table", "score", "label", "query", "best", "next", "difference", "lo", "hi",
                                     "resolved"])
    fig = reference_forest(references)
    fig.savefig(tmp_path / "forest.png")
    assert len(fig.axes[0].get_yticks()) == 5  # the references with a score: not the two "not measured"
    section = scoreboard_section(CONFIG, board, compared, references, tmp_path / "forest.png")
    assert section["image"]
    (table,) = [b for b in section["boards"] if b["title"].startswith("property R^2")]
    rows = {row[0]["text"]: [c["text"] for c in row[2:]] for row in table["rows"]}
    assert table["header"][2:] == ["mass (spectrum)", "mass (image)"]
    assert rows["paper spectrum"] == ["0.875 (zero_shot, k = 16)", ""]
    assert rows["dim16 at zero_shot@16"] == ["0.870 [0.860, 0.880]: within", "0.770 [0.760, 0.780]: above"]
    assert rows["dim128 at zero_shot@16"][0] == "0.830 [0.820, 0.840]: below"
    assert rows["ceiling"] == ["0.9 (a bound; exceeded by dim16)"] * 2
    assert rows["template fit"] == ["0.86 (another method)"] * 2
    listed = reference_section(references)
    assert ["mass", "ceiling", "0.9", "a bound", "dim16", "few_shot, spectrum -> spectrum", "0.950 [0.940, 0.960]",
            "exceeded"] in listed["rows"]
    # on a simulated survey both notes first say the references are of other galaxies, and the figure's title
    assert not section["note"].startswith(SIMULATED_NOTE) and not listed["note"].startswith(SIMULATED_NOTE)
    simulated = (scoreboard_section(CONFIG, board, compared, references, simulated=True),
                 reference_section(references, simulated=True))
    assert all(s["note"] == SIMULATED_NOTE + n["note"] for s, n in zip(simulated, (section, listed)))
    assert "real galaxies" in reference_forest(references, simulated=True).axes[0].get_title()


def test_a_classifier_at_the_majority_baseline_is_never_shaded_as_a_lead():
    board = pd.DataFrame([
        {"model": m, "embedding_dim": d, "table": "classification", "score": "balanced_accuracy",
         "title": "classification balanced accuracy", "label": "edge-on", "query": "image", "protocol": "zero_shot",
         "target": "image", "value": v, "lo": lo, "hi": hi, "baseline": 0.5}
        for m, d, v, lo, hi in (("dim16", 16, 0.52, 0.49, 0.55), ("dim128", 128, 0.70, 0.66, 0.74))])
    assert at_baseline(board).tolist() == [True, False]
    config = {"properties": {}, "classifications": {"edge-on": {}}, "representation": {"enabled": False}}
    compared = pd.DataFrame(columns=["table", "score", "label", "query", "best", "next", "difference", "lo", "hi",
                                     "resolved"])
    section = scoreboard_section(config, board, compared, pd.DataFrame(columns=["metric"]))
    (table,) = section["boards"]
    cells = {row[0]["text"]: row[2] for row in table["rows"]}
    assert cells["dim16"]["text"] == "0.520 [0.490, 0.550] at baseline (0.500)" and cells["dim16"]["style"] == ""
    assert cells["dim128"]["text"] == "0.700 [0.660, 0.740]" and cells["dim128"]["style"] == ""  # alone: no rank
