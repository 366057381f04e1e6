"""The profiles as Snakemake itself reads them: the SLURM profile's values are not overridden by the workflow's
default profile (which Snakemake applies on top of any --profile)."""

import os

import pytest
import yaml
from conftest import ROOT
from snakemake.cli import parse_args


@pytest.fixture
def in_repo():
    before = os.getcwd()
    os.chdir(ROOT)  # the workflow-specific profile is found relative to the working directory
    yield
    os.chdir(before)


def test_slurm_profile_values_win(in_repo):
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    _, args = parse_args(["--profile", "profiles/slurm"])
    assert args.latency_wait == slurm["latency-wait"] == 60
    assert args.retries == slurm["retries"] and args.jobs == slurm["jobs"] and args.executor == "slurm"
    assert args.rerun_incomplete and args.show_failed_logs


def test_default_profile_holds_only_shared_keys(in_repo):
    default = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert all(slurm.get(key, value) == value for key, value in default.items())  # nothing the SLURM profile sets otherwise
    _, args = parse_args([])
    assert args.cores == default["cores"] and args.latency_wait == 5 and args.executor is None
