"""Text from the config or the data reaches every page as text: names and paths that try to end a literal, add a
reStructuredText directive or close a <script> element (issue 35)."""

import json

import jinja2
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, protocols, write_groups
from docutils.core import publish_parts
from test_browser import chromium  # noqa: F401  (the fixture: Chromium present, or skipped outside CI)

from astroclip_eval.io.data import Survey
from astroclip_eval.io.errors import UserError
from astroclip_eval.tasks import explorer
from astroclip_eval.tasks.explorer import script_json


def test_a_dataset_path_cannot_add_a_directive_to_the_report(tmp_path):
    """workflow.rst rendered as Snakemake renders it (Jinja, then docutils with raw HTML and file inclusion allowed,
    its defaults): a legal file name that closes the inline literal and adds `.. raw:: html` and `.. include::`
    lines stays one line of text; no element or file content comes from it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE-CONTENT\n")
    path = f"x``\n\n.. raw:: html\n\n   <img src=x onerror=alert(1)>\n\n.. include:: {secret}\n\n``y.h5"

    class Snakemake:
        config = {"models": {"m": {}}, "dataset": {"path": path}, "row_filter": {"z_min": 0, "z_max": 0.8},
                  "protocols": {"reproduction_neighbours": 16}, "similarity": {"top_k": 3}}

    text = jinja2.Environment().from_string((ROOT / "workflow/report/workflow.rst").read_text()).render(snakemake=Snakemake)
    html = publish_parts(text, writer="html")["html_body"]
    assert "<img" not in html and "onerror=alert" not in html and "PRIVATE-CONTENT" not in html
    assert "x%60%60%0A%0A..%20raw%3A%3A%20html" in html  # shown, percent-encoded, as the literal it was meant to be
    plain = publish_parts(text.replace(jinja2.filters.do_urlencode(path), "data/survey.h5"), writer="html")
    assert '<tt class="docutils literal">data/survey.h5</tt>' in plain["html_body"]  # an ordinary path reads as it is


def test_explorer_json_cannot_end_its_script_element():
    """Every character that can close or comment out a <script> element's text is escaped as \\uXXXX; the string is
    the same to a JSON parser."""
    label = "<!--<script></script>]]>&\u2028"
    text = script_json({"classes": [label]})
    assert not any(c in text for c in "<>&\u2028")
    assert json.loads(text) == {"classes": [label]}


HOSTILE_LABEL = "<!--<script></script><script>window.pwned = 1; document.title = 'PWNED'</script>"


@pytest.mark.slow
@pytest.mark.usefixtures("chromium")
def test_pages_with_hostile_names_run_no_script_in_chromium(tmp_path):
    """The report's description with a hostile dataset path (as docutils renders it for Snakemake's report) and an
    explorer page whose class label tries to end its data element, opened in headless Chromium: no script of theirs
    runs, the explorer's own script does (the page is alive), nothing is requested from outside."""
    import subprocess
    import sys

    from browser_check import LOCAL_SCHEMES
    from test_browser import ARTIFACTS, offline

    path = "x``\n\n.. raw:: html\n\n   <img src=x onerror=\"window.pwned = 1; document.title = 'PWNED'\">\n\n``y.h5"

    class Snakemake:
        config = {"models": {"m": {}}, "dataset": {"path": path}, "row_filter": {"z_min": 0, "z_max": 0.8},
                  "protocols": {"reproduction_neighbours": 16}, "similarity": {"top_k": 3}}

    text = jinja2.Environment().from_string((ROOT / "workflow/report/workflow.rst").read_text()).render(snakemake=Snakemake)
    description = tmp_path / "description.html"
    body = publish_parts(text, writer="html")["html_body"]
    description.write_text(f"<html><head><title>report</title></head><body>{body}</body></html>")

    survey_path = tmp_path / "survey.h5"
    write_groups(survey_path, [150, 150], image_size=20)
    rng = np.random.default_rng(1)
    embeddings = {m: rng.normal(size=(60, 8)).astype(np.float32) for m in ("image", "spectrum")}
    labels = pd.DataFrame({"row": np.arange(60), "shape": np.where(np.arange(60) % 2 == 0, HOSTILE_LABEL, "smooth")})
    settings = {"max_galaxies": 60, "projections": ["pca"], "thumbnail": 16, "spectrum_bins": 32, "seed": 0,
                "query_indices": [5], "top_k": 3, "exclude_self": True, "rows": "valid"}
    with Survey(survey_path) as survey:
        html, _ = explorer.build("m", survey, embeddings, np.arange(60), settings, labels)
    page = tmp_path / "explorer.html"
    page.write_text(html)

    run = subprocess.run(offline([sys.executable, str(ROOT / "tests/browser_check.py"), "--hostile", str(ARTIFACTS),
                                  str(description), str(page)]), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    for name, what in seen.items():
        assert not what["pwned"] and what["title"] != "PWNED" and what["alert"] is None, (name, what)
        assert all(r.startswith(LOCAL_SCHEMES) for r in what["requests"]), (name, what["requests"])
    assert seen["explorer.html"]["explorer_ready"] and not seen["explorer.html"]["errors"]


# --- catalogues and labels through the join script (one line, nothing written) ---------------------------------------


def _refused(tmp_path, config, fragment, measure=False):
    """The join run as the workflow runs it: exit 1, one ERROR line holding `fragment`, no output; with `measure`,
    its peak memory (KB, /usr/bin/time) is returned."""
    from test_catalogues import _join

    run, out = _join(tmp_path, config, time=measure)
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert run.returncode == 1 and len(errors) == 1 and fragment in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr and not out.exists() and not (tmp_path / "join.json").exists()
    assert len(errors[0]) < 600  # whatever the input quoted
    return int(run.stderr.split("peak ")[1].split()[0]) if measure else None


def _property_config(path, column="LOG_MSTAR", **entry):
    return {"catalogues": {"pv": {"path": str(path), "key": "TARGETID"}},
            "properties": {"mass": {"catalogue": "pv", "column": column, **entry}}, "classifications": {}}


def test_a_float_targetid_column_is_refused_even_when_its_values_look_integral(tmp_path):
    """Three rows of the survey are not in this catalogue; stored as float64, 39627745412122624 + 1 and + 2 are the
    same number, so they would all take its properties."""
    from test_catalogues import _write_join_inputs

    _write_join_inputs(tmp_path, pd.DataFrame({"TARGETID": [1008.0, 1009.0], "LOG_MSTAR": [9.0, 10.0]}))
    _refused(tmp_path, _property_config(tmp_path / "cat.csv"),
             "catalogues.pv: column TARGETID holds float64 values; a key is compared exactly")
    big = 39627745412122624
    assert float(big) == float(big + 1) == float(big + 2)


@pytest.mark.parametrize("value, shown", [("n/a?", "n/a?"), ("9.5\x00", "9.5\x00")], ids=["text", "NUL byte"])
def test_text_in_a_numeric_column_names_the_value_and_row(tmp_path, value, shown):
    from test_catalogues import _write_join_inputs

    _write_join_inputs(tmp_path, pd.DataFrame({"TARGETID": [1008, 1009, 1019], "LOG_MSTAR": ["9.0", value, "10.0"]}))
    _refused(tmp_path, _property_config(tmp_path / "cat.csv"),
             f"properties.mass: column LOG_MSTAR of catalogue pv holds text, not numbers ({shown} at survey row 1)")


def test_column_names_are_compared_as_stored(tmp_path):
    """A catalogue with both 'ﬁber' (U+FB01) and 'fiber': each property reads its own column; 'µ' (U+00B5), which
    Python would read as 'μ' (U+03BC), is read as it is; an expression that Python would normalise is refused."""
    from astroclip_eval.io.definitions import needed_columns
    from astroclip_eval.tasks.labels import label_table

    catalogue = {"\ufb01ber": np.array([1.0, 2.0]), "fiber": np.array([5.0, 6.0]), "\u00b5": np.array([7.0, 8.0])}
    config = {"catalogues": {"pv": {"path": "", "key": "TARGETID"}}, "classifications": {},
              "properties": {"a": {"catalogue": "pv", "column": "\ufb01ber"}, "b": {"catalogue": "pv", "column": "fiber"},
                             "c": {"catalogue": "pv", "column": "\u00b5"}}}
    assert needed_columns(config)["pv"] == ["\ufb01ber", "fiber", "\u00b5"]
    table, _, _ = label_table(config, {"pv": catalogue}, {"pv": np.ones(2, dtype=bool)})
    assert table["a"].tolist() == [1.0, 2.0] and table["b"].tolist() == [5.0, 6.0] and table["c"].tolist() == [7.0, 8.0]
    config["properties"]["d"] = {"catalogue": "pv", "expression": "\ufb01ber * 2"}
    with pytest.raises(UserError, match="holds characters Python reads as others"):
        needed_columns(config)


def test_a_class_needs_finite_non_negative_vote_fractions():
    from astroclip_eval.tasks.labels import class_labels

    entry = {"catalogue": "gz", "answers": ["q_a", "q_b"]}
    columns = {"q_a": np.array([0.7, -0.2, np.nan, 0.0, 0.4]), "q_b": np.array([0.3, -0.8, np.nan, 0.0, np.nan])}
    assert class_labels("q", entry, columns).tolist() == ["a", None, None, None, None]


def test_class_names_are_kept_as_written_and_integer_codes_are_classes(tmp_path):
    """NA, None and null are classes in the join, in labels.csv as the notebook and the explorer read it, and in
    the scores; an integer-coded class column (with gaps, so stored as floats) is classes 1, 2, 3."""
    from test_catalogues import _join, _write_join_inputs

    from astroclip_eval.io.files import read_labels
    from astroclip_eval.tasks.downstream import class_codes

    ids = [1008, 1009, 1018, 1019]
    catalogue = pd.DataFrame({"TARGETID": ids, "kind": ["NA", "None", "null", "NA"], "code": [1, 2, None, 3]})
    _write_join_inputs(tmp_path, catalogue)
    config = {"catalogues": {"pv": {"path": str(tmp_path / "cat.csv"), "key": "TARGETID"}}, "properties": {},
              "classifications": {"kind": {"catalogue": "pv", "column": "kind"}, "code": {"catalogue": "pv", "column": "code"}}}
    run, out = _join(tmp_path, config)
    assert run.returncode == 0, run.stderr[-2000:]
    table = read_labels(out, ["kind", "code"])
    assert table["kind"].tolist() == ["NA", "None", "null", "NA"]
    assert table["code"].tolist()[:2] == ["1", "2"] and pd.isna(table["code"][2]) and table["code"][3] == "3"
    names, (codes,) = class_codes(table["kind"].to_numpy(object))
    assert names == ["NA", "None", "null"] and codes.tolist() == [0, 1, 2, 0]
    names, (codes,) = class_codes(table["code"].to_numpy(object))
    assert names == ["1", "2", "3"] and codes.tolist() == [0, 1, -1, 2]


def test_a_question_with_more_classes_than_max_classes_is_refused(tmp_path):
    from astroclip_eval.tasks.labels import class_labels

    entry = {"catalogue": "gz", "column": "id"}
    with pytest.raises(UserError, match=r"classifications.q: 10,000 classes in catalogue gz, more than max_classes \(100\)"):
        class_labels("q", entry, {"id": np.arange(10_000)})
    assert len(set(class_labels("q", {**entry, "max_classes": 10_000}, {"id": np.arange(10_000)}))) == 10_000


def test_a_label_without_variance_on_the_scored_rows_has_no_r2():
    from astroclip_eval.tasks.downstream import evaluate

    rng = np.random.default_rng(0)
    emb = {m: rng.normal(size=(50, 4)).astype(np.float32) for m in ("spectrum", "image")}
    for labels, fragment in ((np.full(50, 3.0), "the label has one value (3) on all 50 scored validation rows"),
                             (np.r_[1e200, -1e200, np.ones(48)], "values too large for a variance")):
        with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            evaluate("properties.flat", emb, labels, np.arange(50), None, None, None, protocols(reproduction_neighbours=4))


def test_coordinates_as_text_or_beyond_the_pole_are_refused(tmp_path):
    from astroclip_eval.tasks.catalogues import coordinate

    with pytest.raises(UserError, match="catalogues.gz: column dec holds text, expected coordinates in degrees"):
        coordinate("gz", "dec", np.array(["12.5", "x"], dtype=object), True)
    with pytest.raises(UserError, match=r"catalogues.gz: column dec holds 1 declinations outside \[-90, 90\] degrees "
                                        r"\(first 95.3 at row 1\)"):
        coordinate("gz", "dec", np.array([12.0, 95.3, np.nan]), True)
    assert np.isnan(coordinate("gz", "ra", np.array([370.0, np.nan]), False)[1])  # RA wraps; NaN is no position


def test_a_ten_megabyte_column_name_is_quoted_short(tmp_path):
    """A catalogue whose header holds a 10 MB column name (a config file is at most 1 MiB, so names from the config
    are bounded there): the message lists it cut to 60 characters."""
    from test_catalogues import _write_join_inputs

    _write_join_inputs(tmp_path, pd.DataFrame({"TARGETID": [1008], "x-" * 5_000_000: [9.0]}))
    _refused(tmp_path, _property_config(tmp_path / "cat.csv"),
             "column LOG_MSTAR not in " + str(tmp_path / "cat.csv") + " (it has TARGETID, x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-"
             "x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-... (10,000,000 characters)...)")


def test_an_hdf5_catalogue_declaring_67_million_rows_in_kilobytes_is_refused_in_bounded_memory(tmp_path):
    import h5py

    write_groups(tmp_path / "survey.h5", [10, 10], image_size=8)
    path = tmp_path / "cat.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("TARGETID", shape=(2**26,), dtype="i8", chunks=(2**16,), compression="gzip")
        f.create_dataset("LOG_MSTAR", shape=(2**26,), dtype="f8", chunks=(2**16,), compression="gzip")
    assert path.stat().st_size < 100_000
    peak = _refused(tmp_path, _property_config(path), "declares 536,870,912 bytes of values in a file of", measure=True)
    assert peak < 1024 * 1024  # KB


def test_a_fits_gz_inflating_past_its_bound_is_refused_in_bounded_memory(tmp_path):
    import gzip

    write_groups(tmp_path / "survey.h5", [10, 10], image_size=8)
    path = tmp_path / "cat.fits.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        for _ in range(200):  # 200 MiB of zeros: a few hundred KB compressed
            f.write(bytes(2**20))
    peak = _refused(tmp_path, _property_config(path), "cat.fits.gz inflates to more than", measure=True)
    assert peak < 1024 * 1024
