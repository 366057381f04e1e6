"""The report's landing page: the numbers it shows are the tables' numbers, and it needs nothing from the network."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import yaml
from conftest import ROOT
from markupsafe import escape

from astroclip_eval.report.overview import render, table_section, versions
from astroclip_eval.tasks.kinds import KINDS

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def test_overview_shows_the_tables_numbers_offline(tmp_path):
    rows = [(m, d, p, q, t, r + shift) for (m, d), base in ((("dim16", 16), 0.6), (("dim128", 128), 0.7))
            for p, shift in (("reproduction", 0.0), ("zero_shot", 0.02))
            for (q, t), r in zip([("spectrum", "spectrum"), ("spectrum", "image"), ("image", "spectrum"), ("image", "image")],
                                 [base, base - 0.05, base - 0.04, base - 0.01])]
    summary = pd.DataFrame(rows, columns=["model", "embedding_dim", "protocol", "query", "target", "r2"])
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    fig.savefig(tmp_path / "fig.png")
    config = {
        "dataset": {"path": "data/demo/survey.h5"},
        "protocols": {
            "run": ["reproduction", "zero_shot"],
            "reproduction_neighbours": 16,
            "exclude_self": True,
            "zero_shot_neighbours": 64,
        },
        "similarity": {"query_indices": [3, 300], "top_k": 3, "exclude_self": True, "rows": "valid"},
        "embedding": {"batch_size": 256, "shards": 2, "precision": "32", "device": "auto"},
        "properties": {},
        "classifications": {},
        "representation": {"enabled": False},
    }
    valid = {"n_rows": 1600, "n_valid": 1556, "z_min": 0.0, "z_max": 0.8,
             "invalid_by_reason": {"zero_spectrum": 17, "nonfinite_spectrum": 0, "redshift_out_of_range": 28},
             "selection": {"min_delta_chi2": 25.0, "candidates": 12001, "kept_fraction": 0.6731}}
    retrieval = pd.DataFrame(
        [(m, d, q, t, 1556, top1, top10, rank) for m, d, top1, top10, rank in (("dim16", 16, 0.05, 0.31, 24.5),
                                                                               ("dim128", 128, 0.081, 0.402, 15.0))
         for q, t in (("spectrum", "image"), ("image", "spectrum"))],
        columns=["model", "embedding_dim", "query", "target", "n", "top1", "top10", "median_rank"])
    for score in ("top1", "top10", "median_rank"):  # intervals as the retrieval step writes them
        retrieval[f"{score}_lo"], retrieval[f"{score}_hi"] = retrieval[score] * 0.9, retrieval[score] * 1.1
    ckpts = {
        m: {"source": f"out/astroclip_ckpt_{m}/astroclip-epoch=18-min.ckpt", "epoch": 18, "monitor": "val/loss", "score": 3.21}
        for m in ("dim16", "dim128")
    }
    embedded = {"dim16": {"dim": 16, "shards": [{"rows": [0, 800], "device": "cpu"}, {"rows": [800, 1600], "device": "cpu"}]},
                "dim128": {"dim": 128, "shards": [{"rows": [0, 1600], "device": "cuda:0 (NVIDIA H100 80GB HBM3)"}]}}
    tables = {t.name: t for kind in KINDS for t in kind.tables}
    sections = [table_section(tables["redshift_r2"], summary, tmp_path / "fig.png"),
                table_section(tables["retrieval"], retrieval)]
    page = render(config, valid, ckpts, embedded, sections, versions(), schema=SCHEMA)
    shown = {(m, p): dict(re.findall(r'data-(\w+-\w+)="([0-9.]+)"', row))
             for m, p, row in re.findall(r'<tr data-model="(\w+)" data-embedding_dim="\d+" data-protocol="(\w+)"([^>]*)>',
                                         page)}
    assert set(shown) == {(m, p) for m in ("dim16", "dim128") for p in ("reproduction", "zero_shot")}
    for (m, p, q, t), r in summary.set_index(["model", "protocol", "query", "target"])["r2"].items():
        assert float(shown[(m, p)][f"{q}-{t}"]) == r
    assert "1,556 valid" in page and "<td>spectrum all zero</td><td class=\"num\">17</td>" in page
    assert "astroclip-epoch=18-min.ckpt" in page and "torch" in page
    for section, key, value in (("embedding", "shards", "2"), ("similarity", "query_indices", "3, 300")):
        meaning = escape(SCHEMA["properties"][section]["properties"][key]["description"])  # the schema's own words
        assert f"<tr><td>{section}.{key}</td><td>{value}</td><td>{meaning}</td></tr>" in page
    assert "<td>cpu: 2 shards</td>" in page and "<td>cuda:0 (NVIDIA H100 80GB HBM3): 1 shard</td>" in page
    assert 'src="data:image/png;base64,' in page
    found = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">\d+</td><td>(\w+) -&gt; own (\w+)</td><td class=\"num\">1,556</td>"
                       r"<td class=\"num\">([0-9.]+) \[[0-9., ]+\]</td><td class=\"num\">([0-9.]+) \[[0-9., ]+\]</td>"
                       r"<td class=\"num\">([0-9.]+) \[[0-9., ]+\]</td>", page)
    assert [(m, q, t, float(a), float(b), float(c)) for m, q, t, a, b, c in found] == [
        tuple(r) for r in retrieval[["model", "query", "target", "top1", "top10", "median_rank"]].itertuples(index=False)]
    selection = re.search(r'<p id="selection">(.*?)</p>', page, re.S).group(1)
    assert "12,001 simulated" in selection and "(67%)" in selection and "delta-chi^2 &gt; 25.0" in selection
    valid.pop("selection")
    assert 'id="selection"' not in render(config, valid, ckpts, embedded, sections, versions())
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page) and "<script" not in page
