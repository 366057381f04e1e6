"""Style and lint gates, in the test suite so CI runs them: ruff on the Python, snakefmt on the Snakefile and
rules, and Snakemake's own linter on the workflow."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent
# Snakemake's linter asks every rule for a conda environment or a container. This workflow deliberately has
# neither: jobs run with the interpreter of the submitting `snakemake` (docs/slurm.md), and a
# conda environment nobody can build or test here would be a false promise. That lint, and only that one, is allowed.
ALLOWED_LINTS = {"Specify a conda environment or container for each rule."}


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_is_clean():
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout[-3000:]


def test_snakefmt_leaves_the_workflow_unchanged():
    result = run(str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]


def test_snakemake_lint_finds_nothing_but_the_deliberate_absence_of_conda():
    result = run(sys.executable, "-m", "snakemake", "--lint", "--cores", "1")
    out = result.stdout + result.stderr
    lints = set(re.findall(r"^\s+\* (.+?):?$", out, flags=re.M))
    assert lints == ALLOWED_LINTS, out[-3000:]
    assert "Lints for snakefile" not in out
    linted_rules = set(re.findall(r"^Lints for rule (\w+)", out, flags=re.M))
    assert {"embed", "promote_checkpoint", "summary"} <= linted_rules  # the linter did walk the rules
