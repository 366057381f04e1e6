"""A run killed mid-embedding (SIGKILL of Snakemake and its job) resumes with --rerun-incomplete to the same bytes
as the tiny config's uninterrupted run."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY_CORES, copy_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tiny")]  # one worker runs the tiny config once


def _cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(TINY_CORES),
            *args]


def _running(pattern: str, workdir: Path) -> bool:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    for pid in out:
        try:
            if Path(f"/proc/{pid}/cwd").resolve() == workdir.resolve():
                return True
        except OSError:
            continue
    return False


def test_sigkill_mid_embedding_then_rerun_incomplete(tiny, tmp_path):
    killed = copy_run(tiny, tmp_path / "killed", "data", "out", "cache")  # the promoted checkpoint and valid rows made
    shutil.rmtree(killed / "cache/tiny/embedding_shards")
    for merged in (killed / "cache/tiny").glob("*_embeddings.pt"):
        merged.unlink()
    run = subprocess.Popen(_cmd(killed, "--until", "merge_embeddings"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 120
    while not _running("workflow/scripts/embed.py", killed):
        assert run.poll() is None and time.monotonic() < deadline, "the embedding job never started"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the scheduler and the job die together, as on a preempted node
    run.wait()
    assert (
        not list((killed / "cache/tiny").glob("embedding_shards/*.pt"))
        and not (killed / "cache/tiny/image_embeddings.pt").exists()
    )

    # What a user does after a kill: release the stale lock, then rerun what was incomplete.
    unlock = subprocess.run(_cmd(killed, "--unlock"), capture_output=True, text=True, timeout=120)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    resumed = subprocess.run(
        _cmd(killed, "--until", "merge_embeddings", "--rerun-incomplete"), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("image_embeddings.pt", "spectrum_embeddings.pt"):
        assert torch.equal(torch.load(killed / f"cache/tiny/{name}"), torch.load(tiny / f"cache/tiny/{name}"))
