"""Bad configs end in one line naming the key, both from the package check and through `snakemake -n`."""

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from astroclip_eval.io.config import check
from astroclip_eval.io.errors import UserError

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def _with(path: str, value) -> dict:
    cfg = copy.deepcopy(DEMO)
    *parents, leaf = path.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return cfg


CASES = [
    (_with("redshift.n_neighbors", 16), "n_neighbors", "redshift"),
    (_with("redshift.n_neighbours", "sixteen"), "redshift.n_neighbours", "integer"),
    (_with("redshift.n_neighbours", 0), "redshift.n_neighbours", "minimum"),
    (_with("similarity.top_k", 0), "similarity.top_k", "minimum"),
    (_with("valid.z_min", 0.9), "valid.z_min", "larger than 'valid.z_max'"),
    (_with("similarity.query_indices", [3, -1]), "similarity.query_indices.1", "-1 is less than the minimum of 0"),
    (_with("models", {"m": {}}), "models.m", "exactly one of"),
    (_with("models", {"m": {"checkpoint": "a.ckpt", "checkpoint_dir": "out"}}), "models.m", "exactly one of"),
    (_with("models", {"m": {"train": {"embedding_dim": 8}, "embedding_dim": 16}}), "models.m.embedding_dim", "differs from"),
    (_with("models", {"m": {"checkpoint": "a.ckpt", "embedding_dim": 0}}), "models.m.embedding_dim", "minimum"),
    (_with("embedding.device", "gpu"), "embedding.device", "does not match"),
    (_with("similarity.rows", "some"), "similarity.rows", "is not one of"),
    (_with("cache_dir", ""), "cache_dir", "does not match"),  # would write into the filesystem root
    (_with("results_dir", " "), "results_dir", "does not match"),
    (_with("models", {"..": {"checkpoint": "a.ckpt"}}), "models", "'..'"),  # would write into the working directory
    (_with("models", {"summary": {"checkpoint": "a.ckpt"}}), "models", "'summary'"),  # the summary's own folder
    (
        _with("models", {"t": {"train": {"embedding_dim": 8}}, "m": {"checkpoint_dir": "out/astroclip_ckpt_t"}}),
        "models.m.checkpoint_dir",
        "where model 't' is trained",
    ),
    (
        _with("models", {"m": {"checkpoint": "a.ckpt", "loader": "auto-detect"}}),
        "models.m.loader",
        "'auto-detect' does not match",
    ),
]


@pytest.mark.parametrize("cfg,key,fragment", CASES)
def test_check_names_the_key(cfg, key, fragment):
    with pytest.raises(UserError) as err:
        check(cfg, SCHEMA)
    message = str(err.value)
    assert key in message and fragment in message and "\n" not in message


def test_demo_config_passes_and_gets_the_schemas_defaults():
    config = copy.deepcopy(DEMO)
    check(config, SCHEMA)
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert config["explorer"] == {k: v["default"] for k, v in schema["explorer"]["properties"].items()}  # a nested default
    assert config["models"]["dim16"]["loader"] == "auto" and config["similarity"]["top_k"] == 3
    assert config["similarity"]["query_indices"] == DEMO["similarity"]["query_indices"]  # given values kept


def test_snakemake_dry_run_shows_one_line_and_plans_nothing(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(_with("redshift.n_neighbours", 0)))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"],
        capture_output=True, text=True, timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "config: 'redshift.n_neighbours': 0 is less than the minimum of 1" in out
    assert "Traceback" not in out
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_a_named_configfile_replaces_the_demo_config(tmp_path):
    """`--configfile my.yaml` must not be merged into config/config.yaml (the demo's models would leak in)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(DEMO))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n",
         "--configfile", str(ROOT / "config/desi-edr.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    out = run.stdout + run.stderr
    assert "config:" not in out and "dim16" not in out
    assert "Missing input files" in out and "data/astroclip_desi.h5" in out  # the template's dataset, not the demo's
