"""The demo report and one executed notebook as a reader sees them: headless Chromium with no network.

Fails on a figure that does not load, on any request that would leave the machine, on an R^2 shown that is not
the CSV's, and on an explorer page whose hover, click or find shows another galaxy or other neighbours than a direct
search of the embeddings. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, read_scoreboard
from PIL import Image
from system import Unavailable, require_tools

from astroclip_eval.io.data import WAVE_MAX, WAVE_MIN, Survey
from astroclip_eval.style import SPECTRAL_LINES, to_rgb

ARTIFACTS = ROOT / "test-artifacts" / "browser"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]  # one worker runs the demo once
PAIRS = [("spectrum", "spectrum"), ("spectrum", "image"), ("image", "spectrum"), ("image", "image")]


@pytest.fixture(scope="module")
def chromium() -> None:
    try:
        require_tools(("chromium", "chromedriver", "ip", "unshare"))
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
def demo_rows(demo) -> dict:
    """What the test reads itself: the valid rows, the survey's TARGETIDs and images, dim16's unit embeddings."""
    valid = torch.load(demo / "cache/valid_indices.pt").numpy()
    with Survey(demo / "data/demo/survey.h5") as survey:
        targetids = survey.read("valid", "targetids")
        redshifts = survey.read("valid", "redshifts")
        images = survey.read("valid", "images")
    unit = {m: torch.nn.functional.normalize(torch.load(demo / f"cache/dim16/{m}_embeddings.pt").double(), dim=1).numpy()
            for m in ("image", "spectrum")}
    return {"valid": valid, "targetids": targetids, "redshifts": redshifts, "images": images, "unit": unit}


@pytest.fixture(scope="module")
def seen(demo, demo_report, chromium, demo_rows) -> dict:
    valid = demo_rows["valid"]
    find = int(valid[len(valid) // 2])
    probe = {"rows": [3, 300, 1200, *valid[::97].tolist()], "find": {"row": find, "targetid": str(demo_rows["targetids"][find])}}
    run = subprocess.run(
        offline([sys.executable, str(ROOT / "tests/browser_check.py"), str(demo_report),
                 str(demo / "results/dim16/redshift.html"), str(ARTIFACTS), str(demo / "results/dim16/explorer.html"),
                 json.dumps(probe)]),
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


def test_every_figure_in_the_report_loads(seen, demo):
    shown = seen["report"]["images"]
    pngs = {str(p.relative_to(demo)) for p in (demo / "results").rglob("*.png") if "logs" not in p.parts}
    # per model: redshift, 8 similarity, retrieval, properties, confusion matrices, 3 posteriors, budgets, the
    # singular values; six summary figures (the references at a glance, redshift and property R^2 against dimension,
    # budgets, the embedding space against dimension, every model's singular values)
    assert set(shown) == pngs and len(pngs) == 2 * 17 + 6
    for path, state in shown.items():
        assert state["complete"] and state["widths"] and min(state["widths"]) > 0, path
    pages = seen["report"]["pages"]
    assert len(pages) == 2 * 6 + 1  # five notebooks and the explorer per model, and the overview
    for path, page in pages.items():
        if path.endswith("explorer.html"):
            continue  # drawn on canvases, not images: test_explorer_opens_in_the_report
        assert page["images"]["widths"] and min(page["images"]["widths"]) > 0, path
    assert "Summary" in seen["report"]["landing"] and "overview" in seen["report"]["landing"]


def test_nothing_leaves_the_machine(seen):
    local = tuple(seen["local_schemes"])
    for where in (seen["report"]["requests"], seen["notebook"]["requests"], seen["explorer"]["requests"]):
        assert where and all(url.startswith(local) for url in where), [u for u in where if not u.startswith(local)]


def test_r2_shown_matches_the_csv(seen, demo):
    """Each model's and the photometry baseline's redshift R^2 rows as the stacked CSV and their own files have them
    (the baseline's in a features -> features column of its own, after the four pairs)."""
    (overview,) = [p for path, p in seen["report"]["pages"].items() if path.endswith("overview.html")]
    table = pd.read_csv(demo / "results/summary/redshift_r2.csv").set_index(["model", "protocol", "query", "target"])["r2"]
    files = {"dim16": "dim16", "dim128": "dim128", "photometry": "baselines/photometry"}
    per_model = {m: pd.read_csv(demo / f"results/{path}/redshift_r2.csv").set_index(["protocol", "query", "target"])["r2"]
                 for m, path in files.items()}
    assert set(table.index.get_level_values(0)) == set(files)
    shown = {(row[1]["model"], row[1]["protocol"]) for row in overview["r2"]}
    assert shown == {(m, p) for m, frame in per_model.items() for p in frame.index.get_level_values(0)}
    for model, data, cells in overview["r2"]:
        protocol = data["protocol"]
        assert cells[2] == protocol
        pairs = [("features", "features")] if model == "photometry" else PAIRS
        for q, t in pairs:
            i = 4 if model == "photometry" else PAIRS.index((q, t))
            value = float(data[q + t.capitalize()])  # data-spectrum-image="..." reads back as dataset.spectrumImage
            assert value == table[(model, protocol, q, t)] == per_model[model][(protocol, q, t)]
            assert cells[3 + i].split(" [")[0] == f"{per_model[model][(protocol, q, t)]:.3f}"  # the number a reader sees
        if model == "photometry":
            assert cells[3:7] == ["", "", "", ""]  # a feature set has no spectrum or image


def test_the_overview_opens_with_the_scoreboard(seen, demo):
    """The first section is the scoreboard: both models' rows with intervals, the photometry baseline and each
    model's paired difference to it, the paper's figures as rows of their own, and the best model's lead with its
    paired interval; each cell is the scoreboard.csv or against_baselines.csv value."""
    (overview,) = [p for path, p in seen["report"]["pages"].items() if path.endswith("overview.html")]
    assert overview["sections"][0] == "scoreboard"
    board = read_scoreboard(demo / "results/summary/scoreboard.csv")
    tables = overview["board"]
    assert len(tables) >= len(board.drop_duplicates(["table", "score"]))  # wide ones in groups of columns
    redshift = tables[0]
    shown = {row[0]: row[2:] for row in redshift[1:]}
    assert {"dim16", "dim128"} <= set(shown) and "best - next" in shown
    r2 = board[board["table"] == "redshift_r2"].set_index(["model", "query"])
    for model in ("dim16", "dim128"):
        for cell, query in zip(shown[model], ("spectrum", "image")):
            value, lo, hi = r2.loc[(model, query), ["value", "lo", "hi"]]
            assert cell == f"{value:.3f} [{lo:.3f}, {hi:.3f}]" and lo < value < hi
    # the photometry baseline's best score under both modalities, each model's paired difference to it beneath
    colours = board[(board["table"] == "redshift_r2") & (board["model"] == "photometry")].iloc[0]
    assert shown["photometry (g, r, z)"] == [f"{colours['value']:.3f} [{colours['lo']:.3f}, {colours['hi']:.3f}]"] * 2
    against = pd.read_csv(demo / "results/summary/against_baselines.csv")
    for model in ("dim16", "dim128"):
        mine = against[(against["table"] == "redshift_r2") & (against["model"] == model)].set_index("query")
        assert shown[f"{model} - photometry"] == [
            f"{mine.loc[q, 'difference']:+.3f} [{mine.loc[q, 'lo']:+.3f}, {mine.loc[q, 'hi']:+.3f}]"
            + ("" if mine.loc[q, "resolved"] else " not resolved") for q in ("spectrum", "image")]
    papers = [row for t in tables for row in t[1:] if row[0] == "AstroCLIP spectrum (Multimodal Universe)"]
    assert papers and "0.879 (zero_shot, k = 16)" in papers[0]  # the paper's LOG_MSTAR from spectra, how it was measured
    beside = [row for t in tables for row in t[1:] if row[0] == "dim16 at zero_shot@16"]
    assert beside and any(cell.endswith((": within", ": above", ": below")) for cell in beside[0][2:])
    # the forest figure on top, and the references table next, each row as summary/references.csv has it
    assert overview["forest"] > 500 and overview["sections"][1] == "references"
    references = pd.read_csv(demo / "results/summary/references.csv", keep_default_na=False)
    assert [row[-1] for row in overview["references"]] == references["verdict"].tolist()
    assert not references["verdict"].str.startswith("not measured").any()  # every shipped figure has its score
    for shot in ("report-overview.png", "report-overview-scoreboard.png", "report-overview-references.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000  # the forest, the board's first table, the references


def test_executed_notebook_renders_offline(seen):
    page = seen["notebook"]
    assert page["images"]["complete"] and page["images"]["widths"] and min(page["images"]["widths"]) > 0
    assert (ARTIFACTS / "notebook-redshift.png").stat().st_size > 10_000


def test_explorer_opens_in_the_report(seen, demo_rows):
    explorers = {path: page for path, page in seen["report"]["pages"].items() if path.endswith("explorer.html")}
    assert {path.split("/")[-2] for path in explorers} == {"dim16", "dim128"}
    for path, page in explorers.items():
        assert page["explorer"]["drawn"] == demo_rows["valid"].size, path  # every valid row: the demo has fewer than 2,000
        assert min(page["explorer"]["painted"]) > 1000, path  # both maps drawn


def test_explorer_hover_shows_the_galaxy_under_the_mouse(seen, demo_rows):
    page = seen["explorer"]
    assert page["errors"] == [] and sorted(page["drawn"]) == demo_rows["valid"].tolist()
    assert len(page["probes"]) >= 2  # rows drawn apart from every other point, so the mouse means only that galaxy
    for row, probe in page["probes"].items():
        row = int(row)
        rgb = Image.fromarray(np.round(to_rgb(demo_rows["images"][row]) * 255).astype(np.uint8))
        expected = np.asarray(rgb.resize((32, 32), Image.Resampling.BOX)).reshape(-1, 3).mean(axis=0)
        for modality in ("spectrum", "image"):
            hover = probe[f"hover_{modality}"]
            assert hover["row"] == str(row)
            assert f"row {row} · TARGETID {demo_rows['targetids'][row]} · z {demo_rows['redshifts'][row]:.4f}" in hover["text"]
            assert np.abs(np.array(hover["tile_mean"]) - expected).max() < 4, (row, modality)  # its cut-out, not another's


def test_explorer_click_shows_the_independent_neighbours(seen, demo_rows, demo):
    valid, unit = demo_rows["valid"], demo_rows["unit"]
    modes = {"sp-sp": ("spectrum", "spectrum"), "im-im": ("image", "image"), "sp-im": ("spectrum", "image"),
             "im-sp": ("image", "spectrum")}
    table = pd.read_csv(demo / "results/dim16/similarity.csv")
    for row, probe in seen["explorer"]["probes"].items():
        row = int(row)
        panel = probe["clicked"]
        assert panel["row"] == str(row) and set(panel["modes"]) == set(modes)
        for mode, (qm, tm) in modes.items():
            cos = unit[qm][row] @ unit[tm][valid].T
            keep = ~((valid == row) & (qm == tm))  # in-modal searches leave the query out (exclude_self)
            best = np.sort(cos[keep])[::-1][:3]
            shown = panel["modes"][mode]
            assert len(shown) == 3 and (qm != tm or row not in [r for r, _ in shown])
            by_row = dict(zip(valid[keep].tolist(), cos[keep]))
            for rank, (r, c) in enumerate(shown):
                # float32 in the page, float64 here: equal to 1e-4, and each is one of the 3 best up to a 1e-5 tie
                assert by_row[r] == pytest.approx(c, abs=1e-4) and by_row[r] >= best[2] - 1e-5, (row, mode, rank)
            if row in set(table["query"]):
                rows = table[(table["query"] == row) & (table["mode"] == mode)].sort_values("rank")["index"].tolist()
                assert [r for r, _ in shown] == rows  # the similarity step's own matches
        # the selected galaxy's spectrum marks each strong line inside the spectrograph's range at its redshift
        z = round(float(demo_rows["redshifts"][row]), 4)  # as the page holds it
        expected = [(rest * (1 + z), (rest * (1 + z) - WAVE_MIN) / (WAVE_MAX - WAVE_MIN) * 618 + 1)
                    for _, rest, _ in SPECTRAL_LINES if WAVE_MIN <= rest * (1 + z) <= WAVE_MAX]
        assert len(panel["lines"]) == len(expected) >= 4, (row, z)
        for (_, observed, x), (want, want_x) in zip(panel["lines"], expected):
            assert observed == pytest.approx(want, abs=0.01) and x == pytest.approx(want_x, abs=0.06), row
    found = seen["explorer"]["found"]
    find_row = int(valid[len(valid) // 2])
    assert found["row"] == str(find_row) and f"TARGETID {demo_rows['targetids'][find_row]}" in found["title"]
    assert (ARTIFACTS / "explorer-neighbours.png").stat().st_size > 20_000
