"""Promotion by the score stored inside each checkpoint, safe loading, and clear errors."""

import json
from pathlib import Path

import pytest
import torch

from astroclip_eval.checkpoints import promote, select_best, sha256
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import safe_load

CALLBACK_KEY = (
    "ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
    "'train_time_interval': None}"
)


def lightning_ckpt(path: Path, epoch: int, score: float) -> None:
    """What ModelCheckpoint saves: the callback state with the monitored score of that epoch."""
    torch.save(
        {
            "epoch": epoch,
            "state_dict": {"w": torch.full((2,), float(epoch))},
            "callbacks": {
                CALLBACK_KEY: {
                    "monitor": "val/loss",
                    "current_score": torch.tensor(score),
                    "best_model_score": torch.tensor(score),
                }
            },
        },
        path,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "astroclip_ckpt_run"
    run.mkdir()
    # Names that sort opposite to their scores: the best is epoch 03, not the newest or the first.
    lightning_ckpt(run / "astroclip-epoch=09-min.ckpt", 9, 0.91)
    lightning_ckpt(run / "astroclip-epoch=03-min.ckpt", 3, 0.42)
    lightning_ckpt(run / "astroclip-epoch=05-min-v1.ckpt", 5, 0.57)
    lightning_ckpt(run / "astroclip-epoch=11-last.ckpt", 11, 0.95)
    return run


def test_picks_lowest_stored_score(run_dir, tmp_path):
    best = select_best(run_dir)
    assert best.path.name == "astroclip-epoch=03-min.ckpt" and best.score == pytest.approx(0.42) and best.epoch == 3
    ckpt, meta = tmp_path / "cache/m/astroclip_model.ckpt", tmp_path / "cache/m/astroclip_model.json"
    promote(run_dir, ckpt, meta)
    assert ckpt.read_bytes() == (run_dir / "astroclip-epoch=03-min.ckpt").read_bytes()
    info = json.loads(meta.read_text())
    assert info == {
        "source": str(run_dir / "astroclip-epoch=03-min.ckpt"),
        "epoch": 3,
        "monitor": "val/loss",
        "score": pytest.approx(0.42),
        "architecture": None,  # a hand-made checkpoint of no built-in model
        "lightning_version": None,
        "sha256": sha256(ckpt),
    }
    assert [p.name for p in ckpt.parent.iterdir()] != [] and not list(ckpt.parent.glob(".*.tmp"))


def test_explicit_checkpoint_file_is_promoted_as_is(run_dir, tmp_path):
    src = run_dir / "astroclip-epoch=11-last.ckpt"
    chosen = promote(src, tmp_path / "a.ckpt", tmp_path / "a.json")
    assert chosen.path == src and chosen.score == pytest.approx(0.95)


def _error(source: Path, tmp_path: Path) -> str:
    with pytest.raises(UserError) as err:
        promote(source, tmp_path / "out/a.ckpt", tmp_path / "out/a.json")
    assert not (tmp_path / "out/a.ckpt").exists() and not (tmp_path / "out/a.json").exists()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_run_dir_errors(tmp_path):
    assert "not found" in _error(tmp_path / "nowhere", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(empty) in _error(empty, tmp_path) and "no '*-min*.ckpt'" in _error(empty, tmp_path)
    last_only = tmp_path / "last_only"
    last_only.mkdir()
    lightning_ckpt(last_only / "astroclip-epoch=04-last.ckpt", 4, 0.3)
    message = _error(last_only, tmp_path)
    assert "only '-last'" in message and "checkpoint:" in message
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    lightning_ckpt(corrupt / "astroclip-epoch=01-min.ckpt", 1, 0.3)
    data = (corrupt / "astroclip-epoch=01-min.ckpt").read_bytes()
    (corrupt / "astroclip-epoch=01-min.ckpt").write_bytes(data[: len(data) // 2])
    assert "astroclip-epoch=01-min.ckpt" in _error(corrupt, tmp_path) and "unreadable" in _error(corrupt, tmp_path)


class _Exploit:
    """Unpickling this would create a file: the attack a crafted checkpoint carries."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Exploit(str(marker))}, evil)
    assert not marker.exists()
    with pytest.raises(UserError) as err:
        safe_load(evil)
    assert not marker.exists()
    message = str(err.value)  # what the file holds and what reads the known formats; no advice to load it unsafely
    assert "refused to load: it holds the Python object io.open" in message and "loader: auto" in message
    assert "\x1b" not in message and "weights_only" not in message and "\n" not in message


def test_non_finite_or_non_numeric_scores_are_never_promoted(run_dir, tmp_path):
    """A diverged epoch's NaN or -inf loss sorts below every real one: it is passed over, whatever the file order, and
    the promotion record stays valid JSON. A score or epoch of the wrong kind ends in one line."""
    lightning_ckpt(run_dir / "astroclip-epoch=00-min.ckpt", 0, float("nan"))
    lightning_ckpt(run_dir / "astroclip-epoch=12-min.ckpt", 12, float("-inf"))
    promote(run_dir, tmp_path / "a.ckpt", tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=pytest.fail)["epoch"] == 3
    assert "not a finite loss" in _error(run_dir / "astroclip-epoch=12-min.ckpt", tmp_path)
    diverged = tmp_path / "diverged"
    diverged.mkdir()
    lightning_ckpt(diverged / "astroclip-epoch=00-min.ckpt", 0, float("nan"))
    assert "every '-min' checkpoint stores a score that is not finite" in _error(diverged, tmp_path)
    for name, value, expected in (("list", [0.1, 0.2], "a list, expected a number"), ("text", "0.1", "a str, expected a number"),
                                  ("tensor", torch.zeros(3), "a tensor of shape (3,), expected a number")):
        odd = tmp_path / f"{name}.ckpt"
        torch.save({"epoch": 1, "state_dict": {}, "callbacks": {CALLBACK_KEY: {"monitor": "val/loss", "current_score": value}}},
                   odd)
        assert f"the stored val/loss score is {expected}" in _error(odd, tmp_path)
    odd = tmp_path / "epoch.ckpt"
    torch.save({"epoch": [1] * 1000, "state_dict": {}}, odd)
    assert "the stored epoch is list" in _error(odd, tmp_path)


def test_a_shared_epoch_of_two_to_the_34_leaves_is_quoted_in_bounded_time(tmp_path):
    """A list that holds itself twice, 34 levels deep, pickles into a few kilobytes; str() of it would walk 2**34
    leaves (promotion hung past 100 s). The message quotes a few elements per level instead."""
    import time

    epoch: list = [1]
    for _ in range(34):
        epoch = [epoch, epoch]
    odd = tmp_path / "shared.ckpt"
    torch.save({"epoch": epoch, "state_dict": {}}, odd)
    started = time.monotonic()
    message = _error(odd, tmp_path)
    assert time.monotonic() - started < 10
    assert "the stored epoch is list [[[...], [...]], [[...], [...]]], expected a small integer" in message


def test_a_promotion_stopped_midway_leaves_neither_file(run_dir, tmp_path, monkeypatch):
    """Killed while hashing the copy (the slow part with a multi-GB file): no checkpoint without its record, no
    record without its checkpoint, no temporary file left."""
    from astroclip_eval import checkpoints

    def interrupted(path):
        raise KeyboardInterrupt  # what a kill looks like from inside the step

    monkeypatch.setattr(checkpoints, "sha256", interrupted)
    with pytest.raises(KeyboardInterrupt):
        promote(run_dir, tmp_path / "cache/a.ckpt", tmp_path / "cache/a.json")
    assert list((tmp_path / "cache").iterdir()) == []

