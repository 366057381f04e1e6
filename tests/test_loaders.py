"""The model-loader contract: a plug-in model (tests/plugins/toy_astroclip.py, not the reference model) through the
whole workflow, and one clear line for each way a loader entry can be wrong."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, copy_run, protocols, snakemake, tiny_config, write_groups

from astroclip_eval.io.data import Survey
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import load_embeddings, load_indices
from astroclip_eval.models import load
from astroclip_eval.tasks.redshift import evaluate

PLUGINS = ROOT / "tests/plugins"
sys.path.insert(0, str(PLUGINS))
import toy_astroclip  # noqa: E402


@pytest.mark.parametrize("spec,fragment", [
    ("toy_astroclip.load", "cannot import 'toy_astroclip.load'"),  # the config's schema refuses this form first
    ("no_such_package.models:load", "cannot import 'no_such_package.models'"),
    ("toy_astroclip:nothing_here", "'toy_astroclip' has no function 'nothing_here'"),
    ("toy_astroclip:not_an_embedder", "returned dict, which has no embed_images or embed_spectra"),
    ("toy_astroclip:ToyEmbedder", "failed: TypeError: "),
])
def test_bad_loader_entries_are_one_line(spec, fragment, tmp_path):
    ckpt = tmp_path / "toy.pt"
    toy_astroclip.write_checkpoint(str(ckpt), dim=6)
    with pytest.raises(UserError) as err:
        load(spec, str(ckpt), torch.device("cpu"), {"dim": 6}, where="models.toy.loader")
    assert str(err.value).startswith("models.toy.loader: ") and fragment in str(err.value) and "\n" not in str(err.value)


def test_built_in_models_refuse_options(tmp_path):
    with pytest.raises(UserError, match="^models.m.loader_options: the built-in models take none, got \\['crop'\\]$"):
        load("auto", str(tmp_path / "x.ckpt"), torch.device("cpu"), {"crop": 3}, where="models.m.loader")


def _with_plugins_on_path(run):
    """Run `run()` with the plug-ins importable by the workflow's jobs."""
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{PLUGINS}{os.pathsep}{env_path}" if env_path else str(PLUGINS)
    try:
        return run()
    finally:
        os.environ["PYTHONPATH"] = env_path
        if not env_path:
            del os.environ["PYTHONPATH"]


@pytest.mark.slow
def test_an_unexpected_failure_leaves_its_traceback_in_the_rules_log(tmp_path):
    """Not a UserError: a plug-in's exception inside embed_images, as CUDA out of memory would be."""
    (tmp_path / "config").mkdir()
    write_groups(tmp_path / "survey.h5", [30, 25], image_size=16)
    toy_astroclip.write_checkpoint(str(tmp_path / "toy.pt"), dim=6)
    config = {
        "dataset": {"path": "survey.h5"},
        "models": {"broken": {"checkpoint": "toy.pt", "loader": "toy_astroclip:load_failing", "loader_options": {"crop": 12}}},
    }
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config))
    shard = "cache/broken/embedding_shards/0-of-1.pt"
    run = _with_plugins_on_path(lambda: snakemake(tmp_path, shard))
    assert run.returncode != 0 and not (tmp_path / shard).exists()
    log = (tmp_path / "results/logs/embed/broken/0-of-1.log").read_text()
    assert "Traceback (most recent call last)" in log and "toy_astroclip.py" in log
    assert "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in log
    assert "RuntimeError: CUDA out of memory" in run.stdout + run.stderr  # --show-failed-logs prints it


# Directory names a careless or hostile config may hold: spaces, quotes, command substitution, backticks.
HOSTILE = "dir with 'quotes\" $(touch EXECUTED) `touch EXECUTED2`"


@pytest.mark.slow
@pytest.mark.xdist_group("tiny")  # one worker runs the tiny config once
def test_plugin_model_through_the_whole_workflow(tiny, tmp_path):
    """A plug-in model through every step of the kinds that need no catalogue, on the tiny config's survey, with the
    cache, results and checkpoint directories named as HOSTILE: the paths reach the commands as data, so the run
    completes and nothing in them is executed."""
    work = copy_run(tiny, tmp_path / "work", "data")
    cache, results, ckpt_dir = work / f"cache {HOSTILE}", work / f"results {HOSTILE}", work / f"ckpt {HOSTILE}"
    ckpt_dir.mkdir()
    toy_astroclip.write_checkpoint(str(ckpt_dir / "toy.pt"), dim=6)
    config = tiny_config(every_kind=False)  # the steps a plug-in's embeddings go through; the tiny run checks the rest
    config["models"] = {"toy": {"checkpoint": f"{ckpt_dir.name}/toy.pt", "loader": "toy_astroclip:load",
                                "loader_options": {"crop": 12}, "embedding_dim": 6}}
    config.update(cache_dir=cache.name, results_dir=results.name)
    config.pop("train")
    config.pop("simulate")  # the survey is the tiny run's, copied
    (work / "config/config.yaml").write_text(yaml.safe_dump(config))
    run = _with_plugins_on_path(lambda: snakemake(work))
    assert run.returncode == 0, run.stderr[-4000:]
    assert not list(tmp_path.rglob("EXECUTED*")) and not list(ROOT.glob("EXECUTED*"))

    emb = load_embeddings(str(cache / "toy/image_embeddings.pt"), str(cache / "toy/spectrum_embeddings.pt"))
    embedder = toy_astroclip.load(str(ckpt_dir / "toy.pt"), torch.device("cpu"), {"crop": 12})
    with Survey(work / config["dataset"]["path"]) as survey:
        assert emb["image"].shape == (survey.n_rows("valid"), 6)
        rows = [0, 17, survey.n_rows("valid") - 1]  # rows of both shards, embedded directly
        direct_images = embedder.embed_images(torch.from_numpy(survey.read_rows("valid", "images", rows)))
        direct_spectra = embedder.embed_spectra(torch.from_numpy(survey.read_rows("valid", "spectra", rows)))
        redshifts = survey.read("valid", "redshifts")
    unit = lambda x: (x / x.norm(dim=1, keepdim=True)).numpy()  # the embed step normalises every row  # noqa: E731
    np.testing.assert_allclose(emb["image"][rows], unit(direct_images), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb["spectrum"][rows], unit(direct_spectra), rtol=1e-5, atol=1e-6)
    valid = load_indices(str(cache / "valid_indices.pt"))
    expected, _, _ = evaluate(emb, redshifts, valid, protocols(reproduction_neighbours=16, exclude_self=True))
    pd.testing.assert_frame_equal(pd.read_csv(results / "toy/redshift_r2.csv"), expected)
    assert json.loads((cache / "toy/astroclip_model.json").read_text())["score"] is None  # not a Lightning run
    assert "n/a" in (results / "summary/overview.html").read_text()
