"""The full-size streaming check (benchmarks/fullsize.py, `make fullsize`): its measurements against known
allocations and reads, and the whole check on a smaller file of 152x152 images through the same code path, with a
memory bound below the size of the validation images (a step that held them would fail it)."""

import importlib.util
import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("fullsize", ROOT / "benchmarks/fullsize.py")
fullsize = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fullsize)


def test_peak_memory_is_the_steps_own_not_this_process(tmp_path):
    ballast = bytearray(600 * 2**20)  # this process is large; a small step forked from it must not look large
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    target = tmp_path / "data.bin"
    target.write_bytes(np.random.default_rng(0).bytes(12 * 2**20))
    reads = f"open({str(target)!r}, 'rb').read(8 * 2**20)"
    rc, _, small, read = fullsize.measured([sys.executable, "-c", reads], tmp_path / "small.log", target)
    assert rc == 0 and small < 100 * 2**20
    assert 8 * 2**20 <= read <= 12 * 2**20  # the 8 MiB read, plus at most the file's readahead
    grow = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    rc, _, big, _ = fullsize.measured([sys.executable, "-c", grow], tmp_path / "big.log", target)
    assert rc == 0 and 300 * 2**20 < big < 300 * 2**20 + small + 50 * 2**20
    rc, *_ = fullsize.measured([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "fail.log", target)
    assert rc == 3


@pytest.mark.slow
def test_streaming_check_on_a_smaller_file(tmp_path):
    n_valid, limit_mb = 4000, 1040  # under the 1,058 MiB of the validation images; the similarity step peaked at
    # 899-1,009 MiB (2026-12-06: the figure with line marks and the spread band added ~10 MiB; the rest varies by run)
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/fullsize.py"), "--workdir", str(tmp_path), "--valid-rows", str(n_valid),
         "--source-galaxies", "150", "--zero-spectra", "20", "--high-redshift", "10", "--limit-mb", str(limit_mb),
         "--explorer-projections", "pca"],
        capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with h5py.File(tmp_path / "survey.h5") as f:
        tails = [(int(0.8 * f[g]["images"].shape[0]), f[g]["images"].shape[0]) for g in f]
        image_bytes = sum(f[g]["images"].id.get_storage_size() for g in f)
        spectra = np.concatenate([f[g]["spectra"][lo:hi] for g, (lo, hi) in zip(f, tails)])
        z = np.concatenate([f[g]["redshifts"][lo:hi] for g, (lo, hi) in zip(f, tails)])
    # Holding the validation images would break the bound: they alone exceed it, before the interpreter and torch
    # (every step's process is over 400 MiB without them).
    assert image_bytes > limit_mb * 2**20
    expected_valid = int(((spectra.max(axis=1) > 0) & (z >= 0) & (z <= 0.8)).sum())
    assert expected_valid == n_valid - 30
    assert json.loads((tmp_path / "cache/valid_summary.json").read_text())["n_valid"] == expected_valid

    table = {m[1]: (float(m[2]), float(m[3].replace(",", "")), float(m[4].replace(",", "")))
             for m in re.finditer(r"^\| (\S[^|]*?) \| ([\d.]+) s \| ([\d,]+) MiB \| ([\d,.]+) MiB \|$", run.stdout, re.M)}
    assert list(table) == [step for step, _ in fullsize.steps()]
    model_mb = (tmp_path / "model.ckpt").stat().st_size / 2**20
    assert all(peak <= limit_mb + model_mb for _, peak, _ in table.values())
    assert table["embed"][2] * 2**20 >= 0.95 * image_bytes  # it did read every validation image, block by block
    assert table["similarity_notebook"][2] < 32  # tens of galaxies drawn, not the file
