"""Catalogue joins against pandas and astropy, the expression parser, and one line per bad catalogue."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table
from conftest import ROOT, write_groups

from astroclip_eval.io import definitions
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.expressions import Expression
from astroclip_eval.tasks import catalogues, labels


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "LOG_MSTAR.real",
        "open('x')",
        "abs(LOG_MSTAR)",
        "log10(x, 2)",
        "log(x=1)",
        "[1][0]",
        "lambda: 1",
        "x if y else z",
        "'text'",
        "x < 1",
        "x.__class__",
        "a; b",
        "{1: 2}",
    ],
)
def test_expressions_refuse_everything_but_arithmetic(text):
    with pytest.raises(UserError, match=r"^properties\.p\.expression: "):
        Expression(text, "properties.p.expression")


def test_expression_values_and_columns():
    e = Expression("log10(AVG_SFR) - LOG_MSTAR + 2 ** -1 * exp(0) - log(1)", "k")
    assert e.columns == ["AVG_SFR", "LOG_MSTAR"]
    got = e.evaluate({"AVG_SFR": np.array([10.0, -1.0]), "LOG_MSTAR": np.array([10.0, 9.0])})
    assert got[0] == pytest.approx(1 - 10 + 0.5) and np.isnan(got[1])  # log of a negative rate: dropped later


def test_key_join_matches_a_pandas_merge():
    rng = np.random.default_rng(0)
    survey = rng.choice(10_000, 400, replace=False)
    cat = pd.DataFrame(
        {"TARGETID": rng.permutation(np.concatenate([survey[:300], 20_000 + np.arange(50)])), "LOG_MSTAR": rng.normal(10, 1, 350)}
    )
    position, counts = catalogues.join_by_key("c", "TARGETID", survey, cat["TARGETID"].to_numpy())
    got = catalogues.take(cat["LOG_MSTAR"], position)
    merged = pd.DataFrame({"TARGETID": survey}).merge(cat, on="TARGETID", how="left")
    np.testing.assert_array_equal(got, merged["LOG_MSTAR"].to_numpy())
    assert counts == {"method": "key TARGETID", "rows": 400, "matched": 300, "unmatched": 100, "duplicates": 0}


def test_sky_match_agrees_with_astropy_and_leaves_a_decoy_at_one_arcsec():
    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(150, 160, 300), rng.uniform(0, 10, 300)
    jitter = rng.normal(0, 0.1 / 3600, (2, 300))
    cat_ra = np.concatenate([ra + jitter[0] / np.cos(np.radians(dec)), [ra[7]], rng.uniform(150, 160, 50)])
    cat_dec = np.concatenate([dec + jitter[1], [dec[7] + 1.0 / 3600], rng.uniform(0, 10, 50)])
    cat_ra[3] = cat_dec[3] = np.nan  # an entry without a position
    ra_q = ra.copy()
    ra_q[5] = np.nan  # a galaxy without coordinates
    position, counts = catalogues.match_on_sky("gz", ra_q, dec, cat_ra, cat_dec, 0.5)
    good = np.isfinite(cat_ra)
    idx, sep, _ = match_coordinates_sky(SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(cat_ra[good] * u.deg, cat_dec[good] * u.deg))
    expected = np.where(sep.to_value(u.arcsec) <= 0.5, np.flatnonzero(good)[idx], -1)
    expected[5] = -1
    np.testing.assert_array_equal(position, expected)
    assert position[7] == 7 and 300 not in position  # the decoy 1 arcsec away is never chosen
    assert position[3] == -1 and counts["matched"] == 298 and counts["without_coordinates"] == 1
    # The decoy alone, at 1 arcsec, is no match at 0.5 arcsec but is one at 1.5 arcsec.
    only = np.array([False] * 300 + [True] + [False] * 50)
    with pytest.raises(UserError, match="catalogues.gz: no survey row has a match within 0.5 arcsec"):
        catalogues.match_on_sky("gz", ra, dec, cat_ra[only], cat_dec[only], 0.5)
    assert catalogues.match_on_sky("gz", ra, dec, cat_ra[only], cat_dec[only], 1.5)[0][7] == 0


def test_two_galaxies_on_one_entry_the_closer_keeps_it():
    ra, dec = np.array([10.0, 10.0 + 0.2 / 3600]), np.array([0.0, 0.0])
    position, counts = catalogues.match_on_sky("gz", ra, dec, np.array([10.0 + 0.15 / 3600]), np.array([0.0]), 0.5)
    assert position.tolist() == [-1, 0] and counts["duplicates"] == 1


@pytest.mark.parametrize("suffix", ["csv", "fits", "hdf5", "parquet"])
def test_formats_read_the_same_columns(tmp_path, suffix):
    frame = pd.DataFrame({"TARGETID": np.arange(5, dtype=np.int64), "LOG_MSTAR": np.linspace(9, 11, 5), "extra": 1.0})
    path = tmp_path / f"cat.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "parquet":
        frame.to_parquet(path)
    else:
        Table.from_pandas(frame).write(path, **({"path": "data"} if suffix == "hdf5" else {}))
    got = catalogues.read_columns("c", path, ["LOG_MSTAR", "TARGETID"])
    assert list(got.columns) == ["LOG_MSTAR", "TARGETID"]
    np.testing.assert_array_equal(got["LOG_MSTAR"], frame["LOG_MSTAR"])
    np.testing.assert_array_equal(got["TARGETID"], frame["TARGETID"])


def test_class_labels_take_the_largest_fraction_and_drop_few_votes():
    entry = {"catalogue": "gz", "answers": ["q_a_debiased", "q_b_debiased"], "min_votes": {"column": "q_total-votes", "value": 3}}
    cols = {
        "q_a_debiased": np.array([0.7, 0.2, 0.9, np.nan]),
        "q_b_debiased": np.array([0.3, 0.8, 0.1, np.nan]),
        "q_total-votes": np.array([10, 5, 2, np.nan]),
    }
    assert labels.answer_names(entry["answers"]) == ["a", "b"]
    assert labels.class_labels("q", entry, cols).tolist() == ["a", "b", None, None]


def _votes_config(**question) -> dict:
    entry = {"catalogue": "gz", "answers": ["q_a_fraction", "q_b_fraction", "q_c_fraction"],
             "min_votes": {"column": "q_total-votes", "value": 3}, **question}
    return {"catalogues": {"gz": {"path": "", "key": "ID"}}, "properties": {}, "classifications": {"q": entry}}


VOTES = {
    "q_a_fraction": np.array([0.6, 0.1, 0.9, 0.2, 0.5]),
    "q_b_fraction": np.array([0.2, 0.7, 0.1, 0.2, 0.1]),
    "q_c_fraction": np.array([0.1, 0.2, 0.0, 0.6, 0.2]),  # rows 0 and 4 sum to 0.9 and 0.8 (debiased need not be 1)
    "q_total-votes": np.array([40, 35, 2, 34, 60]),
}


def test_the_answer_cut_leaves_the_train_split_and_the_fractions_sum_to_one():
    """min_answers removes the class of validation galaxies with that many answers or fewer (34: row 3 with exactly 34
    loses it, row 2 already had none by min_votes), counted as a rule of its catalogue; the train split keeps every galaxy
    min_votes keeps. vote_fractions writes each answer's fraction normalised by the row's sum, on rows with a class."""
    config = _votes_config(min_answers={"column": "q_total-votes", "value": 34}, vote_fractions=True)
    matched = {"gz": np.ones(5, dtype=bool)}
    valid, dropped, _ = labels.label_table(config, {"gz": VOTES}, matched, "valid")
    train, train_dropped, _ = labels.label_table(config, {"gz": VOTES}, matched, "train")
    assert valid["q"].fillna("-").tolist() == ["a", "b", "-", "-", "a"]
    assert train["q"].fillna("-").tolist() == ["a", "b", "-", "c", "a"]
    assert dropped == {"gz": {"q: q_total-votes <= 34": 1}} and train_dropped == {"gz": {}}
    assert labels.fraction_columns("q", config["classifications"]["q"]) == ["q:a", "q:b", "q:c"]
    np.testing.assert_allclose(train[["q:a", "q:b", "q:c"]].to_numpy()[[0, 1, 3, 4]],
                               [[0.6 / 0.9, 0.2 / 0.9, 0.1 / 0.9], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.625, 0.125, 0.25]])
    assert train[["q:a", "q:b", "q:c"]].iloc[2].isna().all()


def test_an_answer_cut_that_leaves_nothing_and_a_class_column_trained_on_fractions_are_refused():
    config = _votes_config(min_answers={"column": "q_total-votes", "value": 60})
    with pytest.raises(UserError, match=r"^classifications.q.min_answers: no validation galaxy with a class has more "
                                         r"than 60 answers in q_total-votes \(most: 60\); nothing written$"):
        labels.label_table(config, {"gz": VOTES}, {"gz": np.ones(5, dtype=bool)}, "valid")
    column = {"catalogues": {"gz": {"path": "", "key": "ID"}}, "properties": {},
              "classifications": {"q": {"catalogue": "gz", "column": "class", "vote_fractions": True}}}
    with pytest.raises(UserError, match=r"^classifications.q.vote_fractions: needs the question's answers"):
        definitions.needed_columns(column)


def _write_join_inputs(tmp_path, catalogue: pd.DataFrame, name="cat.csv"):
    cols = write_groups(tmp_path / "survey.h5", [10, 10], image_size=8)
    catalogue.to_csv(tmp_path / name, index=False)
    return cols


def _join(tmp_path, config, time=False):
    """The join script on the survey in tmp_path; with `time`, under /usr/bin/time (its peak in stderr)."""
    out = tmp_path / "labels.csv"
    run = subprocess.run(
        [
            *(["/usr/bin/time", "-f", "peak %M KB"] if time else []),
            sys.executable,
            str(ROOT / "workflow/scripts/join_catalogues.py"),
            "--dataset",
            str(tmp_path / "survey.h5"),
            "--split",
            "valid",
            "--plan",
            json.dumps(config),
            "--labels",
            str(out),
            "--summary",
            str(tmp_path / "join.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return run, out


def _config(**catalogue):
    return {
        "catalogues": {"pv": {"path": "", "key": "TARGETID", **catalogue}},
        "properties": {"mass": {"catalogue": "pv", "column": "LOG_MSTAR"}},
        "classifications": {},
    }


@pytest.mark.parametrize(
    "frame, fragment",
    [
        (
            pd.DataFrame({"TARGETID": [1008, 1008, 1009], "LOG_MSTAR": [1.0, 2, 3]}),
            "catalogues.pv: column TARGETID repeats 1 values (first 1008)",
        ),
        (pd.DataFrame({"TARGETID": [1, 2], "LOG_MSTAR": [1.0, 2]}), "catalogues.pv: no value of column TARGETID is a targetid"),
        (pd.DataFrame({"TARGETID": [1008, 1009], "MASS": [1.0, 2]}), "catalogues.pv: column LOG_MSTAR not in"),
        (
            pd.DataFrame({"TARGETID": [1008, 1009], "LOG_MSTAR": [np.nan, np.inf]}),
            "properties.mass: no finite value of 'LOG_MSTAR'",
        ),
    ],
    ids=["duplicated key", "no overlap", "missing column", "never finite"],
)
def test_bad_catalogues_end_in_one_line_and_write_nothing(tmp_path, frame, fragment):
    _write_join_inputs(tmp_path, frame)
    config = _config(path=str(tmp_path / "cat.csv"))
    run, out = _join(tmp_path, config)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and fragment in errors[0], run.stderr
    assert "Traceback" not in run.stderr and not out.exists() and not (tmp_path / "join.json").exists()


@pytest.mark.parametrize(
    "mag_z, fragment",
    [
        (None, "catalogues.pv: column MAG_Z not in"),
        ([18.0, np.inf], "baselines.colours.columns: 1 matched rows of catalogue pv have a value of MAG_Z that is not a "
                         "finite number (first at survey row 1)"),
    ],
    ids=["missing column", "not finite"],
)
def test_a_bad_baseline_column_ends_in_one_line_and_writes_nothing(tmp_path, mag_z, fragment):
    frame = pd.DataFrame({"TARGETID": [1008, 1009], "LOG_MSTAR": [10.0, 11.0], "MAG_G": [19.0, 18.5],
                          **({"MAG_Z": mag_z} if mag_z else {})})
    _write_join_inputs(tmp_path, frame)
    config = {**_config(path=str(tmp_path / "cat.csv")),
              "baselines": {"colours": {"catalogue": "pv", "columns": ["MAG_G", "MAG_Z"]}}}
    run, out = _join(tmp_path, config)
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert run.returncode == 1 and len(errors) == 1 and fragment in errors[0], run.stderr
    assert "Traceback" not in run.stderr and not out.exists() and not (tmp_path / "join.json").exists()


def test_join_script_writes_labels_aligned_to_the_split(tmp_path):
    cols = _write_join_inputs(tmp_path, pd.DataFrame({"TARGETID": [1008, 1019, 1015], "LOG_MSTAR": [9.0, 11.0, -1.0]}))
    config = _config(path=str(tmp_path / "cat.csv"))
    config["properties"]["mass"]["range"] = {"min": 0}
    run, out = _join(tmp_path, config)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out)
    valid_ids = np.concatenate([cols["targetids"][8:10], cols["targetids"][18:20]])  # 8 train rows of each 10
    assert valid_ids.tolist() == [1008, 1009, 1018, 1019]
    np.testing.assert_array_equal(table["mass"].to_numpy(), [9.0, np.nan, np.nan, 11.0])
    summary = json.loads((tmp_path / "join.json").read_text())
    assert summary["joins"]["pv"]["matched"] == 2 and summary["labelled"] == {"mass": 2}


def test_config_refuses_unknown_catalogues_and_bad_expressions():
    base = {"catalogues": {"pv": {"path": "x.csv", "key": "TARGETID"}}, "classifications": {}}
    with pytest.raises(UserError, match=r"properties.m.catalogue: catalogue 'nope' is not in catalogues \(pv\)"):
        definitions.needed_columns({**base, "properties": {"m": {"catalogue": "nope", "column": "A"}}})
    with pytest.raises(UserError, match=r"properties.m.expression: 'os.system\(1\)' in .* is not allowed"):
        definitions.needed_columns({**base, "properties": {"m": {"catalogue": "pv", "expression": "os.system(1)"}}})
    gz = {"path": "g.csv", "match": {"ra": "ra", "dec": "dec", "radius_arcsec": 0.5, "coordinates": "gz"}}
    with pytest.raises(UserError, match="catalogues.gz.match.coordinates: 'gz' must be a catalogue joined by key"):
        definitions.needed_columns(
            {"catalogues": {"gz": gz}, "properties": {}, "classifications": {"q": {"catalogue": "gz", "column": "c"}}}
        )


def _provabgs_config(**catalogue) -> dict:
    return {
        "catalogues": {"pv": {"path": "", "key": "TARGETID", **catalogue}},
        "properties": {
            "mass": {"catalogue": "pv", "column": "LOG_MSTAR", "range": {"min": 0}},
            "ssfr": {"catalogue": "pv", "expression": "log10(AVG_SFR) - LOG_MSTAR"},
            "ln_z": {"catalogue": "pv", "expression": "log(Z_MW)"},
        },
        "classifications": {},
    }


def test_failed_fits_drop_the_row_for_every_label_and_are_counted():
    """-999 in any column a label reads drops that galaxy for every property of the catalogue; without the sentinel
    declared, the mass's declared range still keeps -999 out of the derived sSFR (never a value near +999)."""
    cols = {
        "LOG_MSTAR": np.array([10.0, -999.0, 9.0, 11.0, np.nan, 10.5]),
        "AVG_SFR": np.array([1.0, 2.0, -999.0, 10.0, 1.0, 0.0]),
        "Z_MW": np.array([0.02, 0.01, 0.02, -999.0, 0.02, 0.01]),
    }
    matched = np.array([True, True, True, True, False, True])
    config = _provabgs_config(sentinels=[-999])
    table, dropped, undefined = labels.label_table(config, {"pv": cols}, {"pv": matched})
    np.testing.assert_array_equal(table["mass"], [10.0, np.nan, np.nan, np.nan, np.nan, 10.5])
    np.testing.assert_allclose(table["ssfr"], [0 - 10.0, np.nan, np.nan, np.nan, np.nan, np.nan])  # log10(0): undefined
    np.testing.assert_allclose(table["ln_z"], [np.log(0.02), np.nan, np.nan, np.nan, np.nan, np.log(0.01)])
    assert dropped == {"pv": {"sentinel -999": 3}}
    assert undefined == {"mass": 0, "ssfr": 1, "ln_z": 0}

    table, dropped, _ = labels.label_table(_provabgs_config(), {"pv": cols}, {"pv": matched})
    assert dropped == {"pv": {}}
    assert np.isnan(table["ssfr"][1]) and np.isnan(table["mass"][1])  # LOG_MSTAR's {min: 0} holds in sSFR too
    assert np.nanmax(np.abs(table["ssfr"])) < 20


def test_a_row_filter_drops_rows_for_every_label_rule_by_rule():
    cols = {
        "LOG_MSTAR": np.array([10.0, 0.0, 9.0, 11.0, 10.0]),
        "MAG_G": np.array([19.0, 19.0, -1.0, np.nan, 18.0]),
        "AVG_SFR": np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
        "Z_MW": np.array([0.02, 0.02, 0.02, 0.02, 0.02]),
    }
    config = _provabgs_config(where=["LOG_MSTAR > 0", "MAG_G > 0"])
    table, dropped, _ = labels.label_table(config, {"pv": cols}, {"pv": np.ones(5, dtype=bool)})
    assert dropped == {"pv": {"LOG_MSTAR > 0": 1, "MAG_G > 0": 2}}  # a missing magnitude fails the filter
    for name in ("mass", "ssfr", "ln_z"):
        assert table[name].notna().tolist() == [True, False, False, False, True]
    assert definitions.needed_columns({**config, "catalogues": {"pv": {"key": "TARGETID", **config["catalogues"]["pv"]}}})[
        "pv"
    ] == ["LOG_MSTAR", "AVG_SFR", "Z_MW", "MAG_G"]


@pytest.mark.parametrize("text", ["2", "2 * 3 - 1", "-log10(100)"])
def test_a_constant_expression_is_refused_in_the_config_check(text):
    """A label or row filter that reads no column would give every row the same value or verdict, the rows absent
    from the catalogue too."""
    config = {"catalogues": {"pv": {"path": "", "key": "TARGETID"}}, "classifications": {},
              "properties": {"two": {"catalogue": "pv", "expression": text}}}
    with pytest.raises(UserError, match=r"^properties\.two\.expression: '.*' reads no catalogue column"):
        definitions.needed_columns(config)
    config["properties"]["two"] = {"catalogue": "pv", "column": "A"}
    config["catalogues"]["pv"]["where"] = [f"{text} < 7"]
    with pytest.raises(UserError, match=r"^catalogues\.pv\.where\[0\]: '.*' reads no catalogue column"):
        definitions.needed_columns(config)


@pytest.mark.parametrize("text", ["LOG_MSTAR", "LOG_MSTAR == 0", "LOG_MSTAR > 0 and MAG_G > 0", "open(f) > 0"])
def test_row_filters_are_comparisons_only(text):
    config = _provabgs_config(where=[text])
    with pytest.raises(UserError, match=r"^catalogues\.pv\.where\[0\]: "):
        definitions.needed_columns(config)


def test_a_number_too_large_for_a_float_is_refused():
    with pytest.raises(UserError, match=r"^properties\.m\.expression: the number 1000.* is not a finite float"):
        Expression("M * 1" + "0" * 400, "properties.m.expression")
    assert Expression("M * 1e300", "x").evaluate({"M": np.array([2.0])}).tolist() == [2e300]
