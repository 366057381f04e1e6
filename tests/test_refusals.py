"""Cache files that no longer say what they should, scores that would not be numbers, names that would become options
and a full disk: each refused in one line naming the file or key, nothing written, and the good case still runs."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, protocols, write_groups

from astroclip_eval.io.config import check
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import load_indices, load_split
from astroclip_eval.tasks import budgets, posteriors

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


@pytest.mark.parametrize(
    "indices, fragment",
    [
        (torch.tensor([True, False, True]), "expected integer row indices, found bool values (a mask?)"),
        (torch.tensor([0, 2, 2, 5]), "row indices must increase, each once; 2 follows 2"),
        (torch.tensor([0, 1, 2, 3]).repeat(2), "row indices must increase, each once; 0 follows 3"),
        (torch.tensor([-1, 2, 3]), "a negative row index (-1)"),
        (torch.tensor([0.0, 1.0]), "expected integer row indices, found float32 values"),
        (torch.tensor([1, 4, 9]), "row index 9 is past the split's 6 rows"),
    ],
    ids=["mask", "repeat", "twice over", "negative", "floats", "past the rows"],
)
def test_valid_indices_that_are_not_increasing_row_numbers_within_the_rows_are_refused(tmp_path, indices, fragment):
    path = tmp_path / "valid_indices.pt"
    torch.save(indices, path)
    with pytest.raises(UserError) as refused:
        load_indices(str(path), rows=6)
    assert str(refused.value).startswith(f"{path}: ") and fragment in str(refused.value)


def test_good_valid_indices_load_and_are_checked_against_the_embeddings_rows(tmp_path):
    torch.save(torch.tensor([0, 3, 5]), tmp_path / "valid.pt")
    for name in ("image", "spectrum"):
        torch.save(torch.zeros(6, 4), tmp_path / f"{name}.pt")
    embeddings, valid = load_split(str(tmp_path / "image.pt"), str(tmp_path / "spectrum.pt"), str(tmp_path / "valid.pt"))
    assert valid.tolist() == [0, 3, 5] and embeddings["image"].shape == (6, 4)
    torch.save(torch.zeros(5, 4), tmp_path / "image.pt")
    torch.save(torch.zeros(5, 4), tmp_path / "spectrum.pt")  # embeddings of another, shorter file
    with pytest.raises(UserError, match=r"valid\.pt: row index 5 is past the split's 5 rows"):
        load_split(str(tmp_path / "image.pt"), str(tmp_path / "spectrum.pt"), str(tmp_path / "valid.pt"))


def _demo_config() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c["models"].update({"-m": {"train": {"embedding_dim": 8}}}), "'-m' does not match"),
        (lambda c: c["posteriors"].update(labels=[]), "'posteriors.labels': [] should be non-empty"),
        (lambda c: c["budgets"].update(labels=[]), "'budgets.labels': [] should be non-empty"),
    ],
    ids=["model named as an option", "no posterior labels", "no budget labels"],
)
def test_the_config_check_refuses_names_that_become_options_and_empty_label_lists(edit, fragment):
    config = _demo_config()
    edit(config)
    with pytest.raises(UserError) as refused:
        check(config, SCHEMA)
    assert str(refused.value).startswith("config: ") and fragment in str(refused.value)
    check(_demo_config(), SCHEMA)  # the good case


@pytest.mark.parametrize("valid, fragment", [
    (np.full(40, 0.3), "the label has one value (0.3) on all 40 scored validation rows; R^2 is undefined"),
    (np.array([0.3]), "1 valid validation rows have the label; at least 2 are needed"),
    (np.array([]), "0 valid validation rows have the label"),
])
def test_a_posterior_is_refused_where_its_scores_would_not_be_numbers(valid, fragment):
    rng = np.random.default_rng(0)
    how = posteriors.FlowSettings(ensemble=1, epochs=1)
    with pytest.raises(UserError) as refused:
        posteriors.estimate("redshift", "spectrum", rng.normal(size=(300, 4)), rng.uniform(0, 1, 300),
                            rng.normal(size=(valid.size, 4)), valid, how)
    assert str(refused.value).startswith("posteriors.redshift: ") and fragment in str(refused.value)


def test_a_budget_on_a_label_with_one_value_on_the_validation_rows_is_refused():
    rng = np.random.default_rng(1)
    emb = {m: rng.normal(size=(200, 4)) for m in ("spectrum", "image")}
    labels = np.full(200, 0.4)
    with pytest.raises(UserError, match=r"^budgets\.labels: redshift: the label has one value \(0\.4\)"):
        budgets.evaluate("redshift", emb, labels, np.arange(2), emb, rng.uniform(0, 1, 200), np.arange(200),
                         budgets.Budget(fractions=(0.5, 1.0), repeats=1, protocols=("zero_shot",), seed=0),
                         protocols(zero_shot_neighbours=8))


@pytest.fixture
def full_disk(tmp_path):
    """A real filesystem with no space left: a small tmpfs filled to the last byte (needs root, as CI runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must mount a tmpfs for the full-disk test")
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: every page taken
            pass
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_ends_a_step_in_one_line_naming_the_file_and_leaves_nothing(tmp_path, full_disk):
    write_groups(tmp_path / "survey.h5", [30, 30], image_size=8)
    out = full_disk / "cache"
    run = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/valid_indices.py"), "--dataset", str(tmp_path / "survey.h5"),
         "--z-min", "0", "--z-max", "0.8", "--indices", str(out / "valid_indices.pt"),
         "--summary", str(out / "valid_summary.json")],
        capture_output=True, text=True, timeout=120,
    )
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert len(errors) == 1 and errors[0].endswith(f"no space left on device while writing {out / 'valid_indices.pt'}")
    assert sorted(p.name for p in out.iterdir()) == []  # no partial file, no temporary one


def test_a_results_file_from_another_config_checkpoint_or_data_file_is_not_this_runs():
    from astroclip_eval.report.scoreboard import config_hash, stale

    config = _demo_config()
    results = {"harness": {"config_sha256": config_hash(config)}, "checkpoint": {"sha256": "ab" * 32},
               "dataset": {"bytes": 1000, "targetids_sha256": "ef" * 32}}
    assert stale(results, config, {"sha256": "ab" * 32}, 1000, "ef" * 32) is None  # this run's
    other = {**config, "protocols": {**config["protocols"], "reproduction_neighbours": 8}}
    assert stale(results, other, {"sha256": "ab" * 32}, 1000, "ef" * 32).startswith("written under another config")
    assert stale(results, config, {"sha256": "cd" * 32}, 1000, "ef" * 32) == (
        "measured on checkpoint abababababab, not the promoted cdcdcdcdcdcd")
    assert stale(results, config, {"sha256": "ab" * 32}, 999, "ef" * 32) == (
        "measured on a data file of 1,000 bytes, not this run's 999")
    assert stale(results, config, {"sha256": "ab" * 32}, 1000, "01" * 32) == (
        "measured on other galaxies than the validation split of this run's data file (their targetids differ)")


def _cache_of(survey_path, cache) -> list[str]:
    """A cache's validation embeddings, valid rows and record as the embed and merge steps write them for
    `survey_path` (zeros for embeddings: only their rows matter here), and a labels.csv as the join writes it."""
    import pandas as pd

    from astroclip_eval.io.data import Survey

    with Survey(survey_path) as survey:
        data, targetids = survey.fingerprint("valid"), survey.read("valid", "targetids")
    cache.mkdir(exist_ok=True)
    for name in ("image", "spectrum"):
        torch.save(torch.zeros(data["rows"], 4), cache / f"{name}_embeddings.pt")
    torch.save(torch.arange(data["rows"]), cache / "valid_indices.pt")
    (cache / "embeddings.json").write_text(json.dumps({"rows": data["rows"], "data": data}))
    pd.DataFrame({"row": np.arange(data["rows"]), "targetid": targetids}).to_csv(cache / "labels.csv", index=False)
    return [str(cache / n) for n in ("image_embeddings.pt", "spectrum_embeddings.pt", "valid_indices.pt")]


def _restore(path, survey_path) -> None:
    """Copy a file over the data file as `cp -p` or a restore does: its modification time older than the cache's, so
    no step would rerun."""
    shutil.copyfile(path, survey_path)
    os.utime(survey_path, (1e9, 1e9))


def test_embeddings_of_another_data_file_are_refused_where_both_are_read(tmp_path):
    """The data file replaced by one with another group in front, or by one of as many rows with other galaxies
    (restored with an older modification time, so no step reruns): each step that reads the embeddings beside it
    says so instead of scoring them; so does one that reads labels joined to another data file."""
    import h5py

    survey = tmp_path / "survey.h5"
    write_groups(survey, [30, 30], image_size=8)
    paths = _cache_of(survey, tmp_path / "cache")
    labels = str(tmp_path / "cache/labels.csv")
    assert load_split(*paths, str(survey), labels=labels)[1].size == 12  # the good case
    write_groups(tmp_path / "other.h5", [20, 30, 30], image_size=8)  # another group in front
    _restore(tmp_path / "other.h5", survey)
    with pytest.raises(UserError) as refused:
        load_split(*paths, str(survey))
    assert str(refused.value) == (f"{paths[0]}: 12 embedded rows, but the valid split of {survey} has 16: embeddings "
                                  "of another data file (rerun the embed step)")
    write_groups(tmp_path / "other.h5", [30, 30], image_size=8)
    with h5py.File(tmp_path / "other.h5", "r+") as f:  # as many rows, one other galaxy
        f["1/targetids"][-1] = 999_999
    _restore(tmp_path / "other.h5", survey)
    with pytest.raises(UserError) as refused:
        load_split(*paths, str(survey))
    assert str(refused.value) == (f"{paths[0]}: embedded from other galaxies than the valid split of {survey} holds (its "
                                  "targetids differ): embeddings of another data file (rerun the embed step)")
    _cache_of(survey, tmp_path / "joined")  # labels joined to the new file, beside embeddings of the old one
    with pytest.raises(UserError) as refused:
        load_split(*paths, labels=str(tmp_path / "joined/labels.csv"))
    assert str(refused.value) == (f"{tmp_path / 'joined/labels.csv'}: its targetids are not those of the galaxies "
                                  f"embedded in {paths[0]}, in their order: labels joined to another data file (rerun "
                                  "the join_catalogues step)")
    (tmp_path / "cache/embeddings.json").write_text(json.dumps({"rows": 12}))  # a cache from before the fingerprint
    with pytest.raises(UserError, match=r"embeddings\.json: records no fingerprint of the data it embedded"):
        load_split(*paths, str(survey))


def test_shards_embedded_from_another_data_file_are_not_merged(tmp_path):
    """A shard left from an earlier data file (or the merge rerun on a restored one) is not merged into embeddings
    that would be recorded as this file's."""
    from astroclip_eval.embed import merge_shards
    from astroclip_eval.io.data import Survey

    survey = tmp_path / "survey.h5"
    write_groups(survey, [30, 30], image_size=8)
    with Survey(survey) as opened:
        data = opened.fingerprint("valid")
    shards = []
    for i, (lo, hi) in enumerate([(0, 6), (6, 12)]):
        shards.append(tmp_path / f"{i}.pt")
        torch.save({"rows": torch.tensor([lo, hi]), "image": torch.zeros(hi - lo, 4), "spectrum": torch.zeros(hi - lo, 4),
                    "checkpoint_sha256": "ab" * 32, "data": data}, shards[-1])

    def merge() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "workflow/scripts/merge_embeddings.py"), *map(str, shards), "--dataset",
             str(survey), "--image-out", str(tmp_path / "out/image_embeddings.pt"), "--spectrum-out",
             str(tmp_path / "out/spectrum_embeddings.pt"), "--provenance-out", str(tmp_path / "out/embeddings.json")],
            capture_output=True, text=True, timeout=120)

    assert merge().returncode == 0  # the good case
    assert json.loads((tmp_path / "out/embeddings.json").read_text())["data"] == data
    shutil.rmtree(tmp_path / "out")
    torch.save({**torch.load(shards[1]), "data": {**data, "targetids_sha256": "cd" * 32}}, shards[1])
    with pytest.raises(UserError) as refused:
        merge_shards([str(s) for s in shards])
    assert str(refused.value) == (f"{shards[1]}: embedded from other galaxies than {shards[0]} (the split's targetids "
                                  "differ): shards of two data files (rerun the embed step)")
    torch.save({**torch.load(shards[0]), "data": {**data, "targetids_sha256": "cd" * 32}}, shards[0])
    run = merge()
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].endswith(
        f"{shards[0]}: embedded from other galaxies than the valid split of {survey} now holds (its targetids or "
        "groups differ): rerun the embed step"), run.stderr
    assert not (tmp_path / "out").exists()


def test_a_question_with_hundreds_of_classes_draws_its_most_common_ones_in_bounded_memory():
    import resource

    from astroclip_eval.report.plotting import CONFUSION_CLASSES, confusion_panels

    rng = np.random.default_rng(3)
    names = [f"class {i}" for i in range(800)]
    truth = np.minimum(rng.geometric(0.2, 4000) - 1, 799)
    predictions = {("zero_shot", q, t): np.where(rng.uniform(size=4000) < 0.6, truth, rng.integers(0, 800, 4000))
                   for q in ("spectrum", "image") for t in ("spectrum", "image")}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fig = confusion_panels({"q": (names, truth, predictions)}, "zero_shot")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    ax = fig.axes[0]
    assert len(ax.texts) == CONFUSION_CLASSES**2 and ax.get_images()[0].get_array().shape == (12, 12)
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["class 0", "class 1", "class 2"]
    assert ax.get_xticklabels()[-1].get_text() == "other" and "most common classes" in ax.get_title()
    assert grown_mib < 200
    assert ax.get_title().endswith(f"accuracy {np.mean(truth == predictions[('zero_shot', 'spectrum', 'spectrum')]):.2f}")
    import matplotlib.pyplot as plt

    plt.close(fig)
