"""Cache files that no longer say what they should, scores that would not be numbers, names that would become options
and a full disk: each refused in one line naming the file or key, nothing written, and the good case still runs."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, write_groups

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
                         fractions=[0.5, 1.0], repeats=1, protocols=["zero_shot"], k=8)


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
               "dataset": {"bytes": 1000}}
    assert stale(results, config, {"sha256": "ab" * 32}, 1000) is None  # this run's
    other = {**config, "redshift": {**config["redshift"], "n_neighbours": 8}}
    assert stale(results, other, {"sha256": "ab" * 32}, 1000).startswith("written under another config")
    assert stale(results, config, {"sha256": "cd" * 32}, 1000) == (
        "measured on checkpoint abababababab, not the promoted cdcdcdcdcdcd")
    assert stale(results, config, {"sha256": "ab" * 32}, 999) == (
        "measured on a data file of 1,000 bytes, not this run's 999")


def test_embeddings_of_another_data_file_are_refused_where_both_are_read(tmp_path):
    """The data file replaced by one with another group in front (restored with an older modification time, so no
    step reruns): the embeddings no longer cover its rows, and the step says so instead of scoring them."""
    write_groups(tmp_path / "survey.h5", [30, 30], image_size=8)
    from astroclip_eval.io.data import Survey

    with Survey(tmp_path / "survey.h5") as survey:
        rows = survey.n_rows("valid")
    for name in ("image", "spectrum"):
        torch.save(torch.zeros(rows, 4), tmp_path / f"{name}.pt")
    torch.save(torch.arange(rows), tmp_path / "valid.pt")
    paths = [str(tmp_path / f"{n}.pt") for n in ("image", "spectrum", "valid")]
    assert load_split(*paths, str(tmp_path / "survey.h5"))[1].size == rows  # the good case
    write_groups(tmp_path / "survey.h5", [20, 30, 30], image_size=8)  # another group in front
    with Survey(tmp_path / "survey.h5") as survey:
        now = survey.n_rows("valid")
    with pytest.raises(UserError) as refused:
        load_split(*paths, str(tmp_path / "survey.h5"))
    assert str(refused.value) == (f"{paths[0]}: {rows:,} embedded rows, but the valid split of {tmp_path / 'survey.h5'} "
                                  f"has {now:,}: embeddings of another data file (rerun the embed step)")


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
