"""Text from the config or the data reaches every page as text: names and paths that try to end a literal, add a
reStructuredText directive or close a <script> element (issue 35)."""

import json

import jinja2
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, write_groups
from docutils.core import publish_parts
from test_browser import chromium  # noqa: F401  (the fixture: Chromium present, or skipped outside CI)

from astroclip_eval.io.data import Survey
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
        config = {"models": {"m": {}}, "dataset": {"path": path}, "valid": {"z_min": 0, "z_max": 0.8},
                  "redshift": {"n_neighbours": 16}, "similarity": {"top_k": 3}}

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
        config = {"models": {"m": {}}, "dataset": {"path": path}, "valid": {"z_min": 0, "z_max": 0.8},
                  "redshift": {"n_neighbours": 16}, "similarity": {"top_k": 3}}

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
