"""The demo report and one executed notebook as a reader sees them: headless Chromium with no network.

Fails on a figure that does not load, on any request that would leave the machine, and on an R^2 shown that is not
the CSV's. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, snakemake
from system import Unavailable, ensure_packages

ARTIFACTS = ROOT / "test-artifacts" / "browser"
PAIRS = [("spectrum", "spectrum"), ("spectrum", "image"), ("image", "spectrum"), ("image", "image")]


@pytest.fixture(scope="module")
def chromium() -> None:
    try:
        ensure_packages(("chromium", "chromedriver", "ip"), ("chromium", "chromium-driver", "iproute2"))
    except Unavailable as why:
        if os.environ.get("CI"):
            raise  # CI must run the browser test, never skip it
        pytest.skip(f"no headless Chromium: {why}")


def offline(cmd: list[str]) -> list[str]:
    """The command in a fresh network namespace with only loopback up (chromedriver listens there)."""
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *cmd]
    if os.environ.get("CI"):
        raise RuntimeError("CI must isolate the browser in a network namespace (needs root, unshare, ip)")
    return cmd  # the Chromium flags still send remote requests nowhere, and every request is checked below


@pytest.fixture(scope="module")
def seen(demo, chromium) -> dict:
    report = snakemake(demo, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    run = subprocess.run(
        offline([sys.executable, str(ROOT / "tests/browser_check.py"), str(demo / "results/report.html"),
                 str(demo / "results/dim16/redshift.html"), str(ARTIFACTS)]),
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


def test_every_figure_in_the_report_loads(seen, demo):
    shown = seen["report"]["images"]
    pngs = {str(p.relative_to(demo)) for p in (demo / "results").rglob("*.png") if "logs" not in p.parts}
    # per model: redshift, 8 similarity, retrieval, properties, confusion matrices; two summary figures
    assert set(shown) == pngs and len(pngs) == 2 * 12 + 2
    for path, state in shown.items():
        assert state["complete"] and state["widths"] and min(state["widths"]) > 0, path
    pages = seen["report"]["pages"]
    assert len(pages) == 2 * 3 + 1  # three notebooks per model and the overview
    for path, page in pages.items():
        assert page["images"]["widths"] and min(page["images"]["widths"]) > 0, path
    assert "Summary" in seen["report"]["landing"] and "overview" in seen["report"]["landing"]


def test_nothing_leaves_the_machine(seen):
    local = tuple(seen["local_schemes"])
    for where in (seen["report"]["requests"], seen["notebook"]["requests"]):
        assert where and all(url.startswith(local) for url in where), [u for u in where if not u.startswith(local)]


def test_r2_shown_matches_the_csv(seen, demo):
    (overview,) = [p for path, p in seen["report"]["pages"].items() if path.endswith("overview.html")]
    table = pd.read_csv(demo / "results/summary/redshift_r2.csv").set_index(["model", "protocol", "query", "target"])["r2"]
    per_model = {m: pd.read_csv(demo / f"results/{m}/redshift_r2.csv").set_index(["protocol", "query", "target"])["r2"]
                 for m in table.index.get_level_values(0).unique()}
    shown = {(row[1]["model"], row[1]["protocol"]) for row in overview["r2"]}
    assert shown == {(m, p) for m, frame in per_model.items() for p in frame.index.get_level_values(0)}
    for model, data, cells in overview["r2"]:
        protocol = data["protocol"]
        assert cells[2] == protocol
        for i, (q, t) in enumerate(PAIRS):
            value = float(data[q + t.capitalize()])  # data-spectrum-image="..." reads back as dataset.spectrumImage
            assert value == table[(model, protocol, q, t)] == per_model[model][(protocol, q, t)]
            assert cells[3 + i] == f"{per_model[model][(protocol, q, t)]:.3f}"  # the number a reader sees


def test_executed_notebook_renders_offline(seen):
    page = seen["notebook"]
    assert page["images"]["complete"] and page["images"]["widths"] and min(page["images"]["widths"]) > 0
    assert (ARTIFACTS / "notebook-redshift.png").stat().st_size > 10_000
