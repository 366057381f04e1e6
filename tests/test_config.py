"""Bad configs end in one line naming the key, both from the package check and through `snakemake -n`."""

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, write_groups

from astroclip_eval.io.config import MOVED, check, check_against_data, check_files
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
    (_with("protocols.n_neighbors", 16), "n_neighbors", "protocols"),
    (_with("protocols.reproduction_neighbours", "sixteen"), "protocols.reproduction_neighbours", "integer"),
    (_with("protocols.reproduction_neighbours", 0), "protocols.reproduction_neighbours", "minimum"),
    (_with("similarity.top_k", 0), "similarity.top_k", "minimum"),
    (_with("row_filter.z_min", 0.9), "row_filter.z_min", "larger than 'row_filter.z_max'"),
    (_with("similarity.query_indices", [3, -1]), "similarity.query_indices.1", "-1 is less than the minimum of 0"),
    (_with("models", {"m": {}}), "models.m", "exactly one of"),
    (_with("models", {"m": {"checkpoint": "a.ckpt", "checkpoint_dir": "out"}}), "models.m", "exactly one of"),
    (_with("models", {"m": {"train": {"embedding_dim": 8}, "embedding_dim": 16}}), "models.m.embedding_dim", "differs from"),
    (_with("models", {"m": {"checkpoint": "a.ckpt", "embedding_dim": 0}}), "models.m.embedding_dim", "minimum"),
    (_with("embedding.device", "gpu"), "embedding.device", "does not match"),
    (_with("similarity.rows", "some"), "similarity.rows", "is not one of"),
    (_with("budgets.labels", ["redshift", "mass"]), "budgets.labels", "'mass', which is neither redshift nor a key of"),
    (_with("representation.labels", ["mass"]), "representation.labels", "'mass', which is neither redshift nor a key"),
    (_with("representation.neighbours", 0), "representation.neighbours", "minimum"),
    (_with("posteriors.joint.labels", ["LOG_MSTAR", "z"]), "posteriors.joint.labels", "'z', which is neither"),
    (_with("cache_dir", ""), "cache_dir", "does not match"),  # would write into the filesystem root
    (_with("results_dir", " "), "results_dir", "does not match"),
    (_with("models", {"..": {"checkpoint": "a.ckpt"}}), "models", "'..'"),  # would write into the working directory
    (_with("models", {"summary": {"checkpoint": "a.ckpt"}}), "models", "'summary'"),  # the summary's own folder
    (
        _with("models", {"t": {"train": {"embedding_dim": 8}}, "m": {"checkpoint_dir": "out/astroclip_ckpt_t"}}),
        "models.m.checkpoint_dir",
        "where model 't' is trained",
    ),
    (_with("catalogues.galaxy_zoo.match.radius_arcsec", float("nan")), "catalogues.galaxy_zoo.match.radius_arcsec", "nan"),
    (_with("row_filter.z_max", float("nan")), "row_filter.z_max", "a finite number"),
    (_with("properties.LOG_MSTAR.range.min", float("nan")), "properties.LOG_MSTAR.range.min", "a finite number"),
    (_with("classifications.smooth-or-featured.min_votes.value", float("inf")), "min_votes.value", "inf"),
    (_with("models", {1: {"checkpoint": "a.ckpt"}}), "key 1", "not text"),
    (_with("similarity.query_indices", [3, 10**30]), "similarity.query_indices.1", "is greater than the maximum"),
    (_with("embedding.shards", 10**8), "embedding.shards", "is greater than the maximum of 1024"),
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


@pytest.mark.parametrize("old,new", list(MOVED.items()))
def test_a_key_of_the_old_redshift_section_is_refused_naming_its_new_place(old, new):
    """A config written before the protocols section (every label's protocols were under `redshift:`) is not read
    with its settings silently dropped or defaulted: one line names the key's new place."""
    cfg = _with(old, 1)  # refused before its value is looked at
    with pytest.raises(UserError) as err:
        check(cfg, SCHEMA)
    assert str(err.value) == (f"config: '{old}' is now '{new}' (the protocols section sets how every label is scored); "
                              "rename the key")
    cfg = _with("redshift", {})  # the section alone, empty
    with pytest.raises(UserError, match=r"^config: the 'redshift' section is now 'protocols'"):
        check(cfg, SCHEMA)


@pytest.mark.parametrize("old,new", [
    ("valid.z_max", "the 'valid' section is now 'row_filter'"),
    ("catalogues.provabgs_paper.valid", "'catalogues.provabgs_paper.valid' is now 'catalogues.provabgs_paper.where'"),
    ("properties.LOG_MSTAR.valid", "'properties.LOG_MSTAR.valid' is now 'properties.LOG_MSTAR.range'"),
])
def test_valid_names_only_the_split_and_its_rows_and_the_old_keys_are_refused(old, new):
    """The row filter, a catalogue's row filter and a property's range each have a name of their own; a config that
    still calls one of them `valid` stops in one line naming the new key."""
    with pytest.raises(UserError) as err:
        check(_with(old, {"min": 0} if old.startswith("properties") else [] if old.startswith("cat") else 0.8), SCHEMA)
    assert str(err.value).startswith(f"config: {new}") and "\n" not in str(err.value)


def test_demo_config_passes_and_gets_the_schemas_defaults():
    config = copy.deepcopy(DEMO)
    check(config, SCHEMA)
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert config["explorer"] == {k: v["default"] for k, v in schema["explorer"]["properties"].items()}  # a nested default
    assert config["models"]["dim16"]["loader"] == "auto" and config["similarity"]["top_k"] == 3
    assert config["similarity"]["query_indices"] == DEMO["similarity"]["query_indices"]  # given values kept


@pytest.mark.parametrize("key,value,line", [
    ("protocols.reproduction_neighbours", 0, "config: 'protocols.reproduction_neighbours': 0 is less than the minimum of 1"),
    ("redshift.n_neighbours", 16, "config: 'redshift.n_neighbours' is now 'protocols.reproduction_neighbours'"),
    ("posteriors.labels", ["redshift", "nope"], "config: 'posteriors.labels' names 'nope', which is neither redshift "
                                                "nor a key of properties (redshift, LOG_MSTAR"),
])
def test_snakemake_dry_run_shows_one_line_and_plans_nothing(tmp_path, key, value, line):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(_with(key, value)))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "-n"],
        capture_output=True, text=True, timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert line in out
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


BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("text,fragment", [
    ("models: {m: {checkpoint: x.ckpt}}\na: &a [1, 2]\n" + BOMB, "line 3: YAML alias *a: aliases are not accepted"),
    ("protocols: {run: [zero_shot]}\nmodels: {}\nprotocols: {run: [few_shot]}\n", "line 3: protocols is given twice"),
    ("models:\n  m: {checkpoint: a}\n  1: {checkpoint: b}\n", "line 3: key 1 under 'models' is not text"),
    ("models: [unclosed\n", "not valid YAML"),
])
def test_config_files_are_read_as_yaml_nodes_first(tmp_path, text, fragment):
    """Aliases, a key given twice, keys that are not text and broken YAML: one line naming the file and the line,
    before any object is built from the file."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        check_files([path])
    assert str(err.value).startswith(f"{path}: ") and fragment in str(err.value) and "\n" not in str(err.value)


def test_a_config_file_over_a_megabyte_is_refused_unread(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(UserError, match="over the 1,048,576 a config may have"):
        check_files([path])


def test_billion_laughs_through_snakemake_is_one_line_in_bounded_memory(tmp_path):
    """A 600-byte config of nested aliases (10**9 values once expanded): `snakemake -n` says which line, in the
    memory of any dry run (the expansion took it past 3 GB)."""
    (tmp_path / "bomb.yaml").write_text("dataset: {path: x.h5}\nmodels: {m: {checkpoint: x.ckpt}}\na: &a [1, 1]\n" + BOMB)
    run = subprocess.run(
        ["/usr/bin/time", "-f", "peak %M KB", sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
         "-d", str(tmp_path), "-n", "--configfile", str(tmp_path / "bomb.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "bomb.yaml: line 4: YAML alias *a: aliases are not accepted" in out
    assert "Traceback" not in out
    assert int(out.split("peak ")[1].split()[0]) < 1024 * 1024  # KB: under 1 GiB


def test_counts_in_the_config_are_checked_against_the_data_file(tmp_path):
    """A 4-row validation split: 5 shards would be jobs with nothing to embed, row 4 is beyond it; without the file
    (the demo simulates it later) nothing is checked."""
    write_groups(tmp_path / "survey.h5", [10, 10], image_size=8)  # 2 validation rows per group
    config = _with("dataset.path", str(tmp_path / "survey.h5"))
    check(config, SCHEMA)
    config["embedding"]["shards"] = 5
    with pytest.raises(UserError, match=r"'embedding.shards' \(5\) is more than the 4 validation rows of"):
        check_against_data(config)
    config["embedding"]["shards"], config["similarity"]["query_indices"] = 4, [0, 4]
    with pytest.raises(UserError, match=r"'similarity.query_indices' holds 4, beyond the 4 validation rows"):
        check_against_data(config)
    config["similarity"]["query_indices"] = [3]
    check_against_data(config)
    check_against_data({**config, "dataset": {"path": str(tmp_path / "not-yet.h5")}})
