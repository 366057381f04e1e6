"""The numerically sensitive tests again under torch's portable CPU kernel, so a tolerance tuned to one processor's
vector kernel (AVX2 here, AVX-512 elsewhere) fails on every machine, not only on the one it does not fit.

numpy's BLAS kernel is not switched (OPENBLAS_* stays as the machine has it): the tolerances that depend on it are
derived from the float32 error of the computation instead (see test_simulate's template-fit test)."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow  # a minute of the same tests again: make test runs it, make test-fast leaves it out
def test_numeric_tests_pass_under_the_portable_torch_kernel():
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "DEFAULT"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "numeric", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = [line for line in run.stdout.splitlines() if " passed" in line]
    assert passed and " failed" not in passed[-1], run.stdout[-2000:]
