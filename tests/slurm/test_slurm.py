"""The workflow through a real single-node SLURM cluster with the project's SLURM profile.

Each test asserts what SLURM recorded (job ids, partitions, GRES, logs), not just exit codes. Status is queried
with squeue (there is no slurmdbd here); every test has a hard timeout. The work directory starts as users' do on a
cluster: a survey file and a training run directory (the tiny config's, copied from the `tiny` fixture's local run),
so nothing is simulated or trained again and the local run is the reference the SLURM run must reproduce.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT, copy_run
from system import Unavailable

from .cluster import Cluster

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow, pytest.mark.xdist_group("tiny")]
PROFILE = ROOT / "profiles/slurm"
SLURM_ARGS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--slurm-no-account",
    "--latency-wait", "5",
    "--seconds-between-status-checks", "2",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm") / "cluster")
    try:
        c.start()
    except Unavailable as why:
        if os.environ.get("CI"):
            raise  # CI must run these tests, never skip them
        pytest.skip(f"no SLURM test cluster: {why}")
    yield c
    c.stop()
    assert all(p.poll() is not None for p in c.procs) or not c.procs


def snakemake(cluster: Cluster, workdir: Path, *args: str, timeout: int = 500) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--profile", str(PROFILE), *SLURM_ARGS, *args]
    return subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def jobs(cluster: Cluster) -> dict[int, dict[str, str]]:
    """Every job slurmctld knows (finished ones stay for MinJobAge), as key=value records."""
    out = cluster.run("scontrol", "show", "job", "-o")
    records = {}
    for line in out.splitlines():
        if not line.startswith("JobId="):
            continue
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[int(fields["JobId"])] = fields
    return records


def shard_of(job: dict[str, str]) -> int:
    """The shard wildcard, last in the comment the executor writes (rule_embed_wildcards_<model>_<shard>)."""
    return int(re.search(r"_(\d+)$", job.get("Comment", "")).group(1))


def rule_of(job: dict[str, str]) -> str:
    match = re.search(r"rule_([A-Za-z_]+?)(?:_wildcards|$)", job.get("Comment", ""))
    return match.group(1) if match else job.get("Comment", "")


@pytest.fixture(scope="module")
def slurm_run(cluster, tiny, tmp_path_factory):
    work = copy_run(tiny, tmp_path_factory.mktemp("slurm_run") / "work", "data", "out")
    dry = snakemake(cluster, work, "-n")
    submitted_by_dry_run = jobs(cluster)
    run = snakemake(cluster, work, "--slurm-array-jobs", "embed")  # the shards as one job array (off in the profile)
    return work, dry, submitted_by_dry_run, run


def test_dry_run_plans_and_submits_nothing(slurm_run):
    _, dry, submitted, _ = slurm_run
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, flags=re.M))
    assert counts["embed"] == "2" and counts["promote_checkpoint"] == "1" and counts["redshift_notebook"] == "1"
    assert "train_model" not in counts and "simulate_survey" not in counts  # the copied survey and run directory
    assert "properties_notebook" not in counts and "join_catalogues" not in counts  # the tiny run checks those kinds
    assert submitted == {}


def test_the_copied_steps_would_go_to_their_partitions(cluster, slurm_run):
    """Simulation and training are copied, not run again; what the profile would submit them with is read from a
    forced dry run (a plan: nothing is submitted), as is the GPU the notebooks ask for with downstream.device: auto."""
    work, *_ = slurm_run
    before = set(jobs(cluster))
    plan = snakemake(cluster, work, "-n", "--forceall")
    out = plan.stdout + plan.stderr
    assert plan.returncode == 0, out[-3000:]
    resources = dict(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M))
    assert "slurm_partition=gpu" in resources["train_model"] and "gpu=1" in resources["train_model"]
    assert "slurm_partition=cpu" in resources["simulate_survey"] and "gpu=" not in resources["simulate_survey"]
    assert "gpu=0" in resources["redshift_notebook"]  # downstream.device: cpu, the default
    # downstream.device: auto asks for one GPU; the partition is the profile's (its commented lines, set here)
    plan = snakemake(cluster, work, "-n", "--forceall", "--config", "downstream={'device': 'auto'}",
                     "--set-resources", "redshift_notebook:slurm_partition=gpu")
    out = plan.stdout + plan.stderr
    assert plan.returncode == 0, out[-3000:]
    resources = dict(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M))
    assert "slurm_partition=gpu" in resources["redshift_notebook"] and "gpu=1" in resources["redshift_notebook"]
    assert set(jobs(cluster)) == before


def test_tiny_config_through_slurm(cluster, slurm_run, tiny):
    work, _, _, run = slurm_run
    assert run.returncode == 0, run.stderr[-4000:]
    by_rule: dict[str, list[dict[str, str]]] = {}
    for job in jobs(cluster).values():
        by_rule.setdefault(rule_of(job), []).append(job)
    # Heavy rules went through sbatch; light ones (promotion, notebook HTML, summary) stayed local.
    assert {"embed", "valid_indices", "redshift_notebook", "similarity_notebook", "explorer"} <= set(by_rule)
    assert not {"promote_checkpoint", "merge_embeddings", "notebook_html", "summary", "settings"} & set(by_rule)
    unfinished = [f"job {j['JobId']} ({rule_of(j)}): {j['JobState']}, reason {j.get('Reason')}, exit {j.get('ExitCode')}, "
                  f"log {j.get('StdOut')}" for js in by_rule.values() for j in js if j["JobState"] != "COMPLETED"]
    assert not unfinished, "; ".join(unfinished) + "\n" + run.stderr[-3000:]
    # One GPU job per embedding shard (embedding.shards: 2 in the tiny config), both tasks of one job array.
    assert len(by_rule["embed"]) == 2
    arrays = {j.get("ArrayJobId") for j in by_rule["embed"]}
    assert len(arrays) == 1 and None not in arrays
    assert len({j["ArrayTaskId"] for j in by_rule["embed"]}) == 2  # two tasks of that one array
    assert all(j["Partition"] == "gpu" and j.get("TresPerJob") == "gres:gpu:1" for j in by_rule["embed"])
    assert by_rule["valid_indices"][0]["Partition"] == "cpu"
    for shard in (0, 1):
        assert "CUDA_VISIBLE_DEVICES=0" in (work / f"results/logs/embed/tiny/{shard}-of-2.log").read_text()
    assert list((work / "results/logs/slurm").rglob("*.log"))
    # The same outputs as the local run of the same config and checkpoint (bit-identical embeddings on CPU).
    for name in ("image_embeddings.pt", "spectrum_embeddings.pt"):
        assert torch.equal(torch.load(work / f"cache/tiny/{name}"), torch.load(tiny / f"cache/tiny/{name}"))
    for table in ("similarity.csv", "retrieval.csv"):
        assert (work / f"results/tiny/{table}").read_text() == (tiny / f"results/tiny/{table}").read_text(), table
    r2 = [pd.read_csv(w / "results/tiny/redshift_r2.csv") for w in (work, tiny)]  # this copy runs reproduction alone
    pd.testing.assert_frame_equal(r2[0], r2[1][r2[1]["protocol"] == "reproduction"].reset_index(drop=True), check_exact=True)


def test_forcerun_resubmits_only_that_job(cluster, slurm_run):
    work, _, _, _ = slurm_run
    before = set(jobs(cluster))
    run = snakemake(cluster, work, "--forcerun", "similarity_notebook")
    assert run.returncode == 0, run.stderr[-3000:]
    new = {i: j for i, j in jobs(cluster).items() if i not in before}
    assert [rule_of(j) for j in new.values()] == ["similarity_notebook"]


def _cancel_when_running(cluster: Cluster, rule: str, cancelled: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        for job_id, job in jobs(cluster).items():
            if rule_of(job) == rule and job["JobState"] == "RUNNING" and job_id not in cancelled:
                # an array task by its task id: `scancel <id>` with the array's own id would cancel every task
                task = f"{job['ArrayJobId']}_{job['ArrayTaskId']}" if job.get("ArrayTaskId") else str(job_id)
                cluster.run("scancel", task)
                cancelled.append(job_id)
                return
        time.sleep(0.1)


def test_cancelled_embedding_job_is_retried(cluster, slurm_run):
    work, _, _, _ = slurm_run
    reference = torch.load(work / "cache/tiny/image_embeddings.pt")
    before = set(jobs(cluster)) or {0}
    cancelled: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_cancel_when_running, args=(cluster, "embed", cancelled, stop))
    watcher.start()
    try:
        run = snakemake(cluster, work, "--forcerun", "embed", "--retries", "1", "--until", "merge_embeddings")
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(cancelled) == 1
    # Both shards ran again (forced); the cancelled one was resubmitted once and completed.
    embeds = [j for i, j in jobs(cluster).items() if rule_of(j) == "embed" and i > max(before)]
    states = sorted(j["JobState"] for j in embeds)
    seen = [(j["JobId"], j.get("ArrayJobId"), j.get("ArrayTaskId"), j["JobState"]) for j in embeds]
    assert states == ["CANCELLED", "COMPLETED", "COMPLETED"], seen
    assert torch.equal(torch.load(work / "cache/tiny/image_embeddings.pt"), reference)


def test_cancelled_shard_fails_then_only_it_is_resubmitted(cluster, slurm_run):
    work, _, _, _ = slurm_run
    keep = (work / "cache/valid_indices.pt").stat().st_mtime_ns
    shutil.rmtree(work / "results/tiny")  # as in a first run (with its results present, the lost embeddings are not remade)
    for stale in (work / "cache/tiny").glob("*_embeddings.pt"):
        stale.unlink()
    cancelled: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_cancel_when_running, args=(cluster, "embed", cancelled, stop))
    watcher.start()
    try:  # --keep-going: the other shard finishes although this one failed
        failed = snakemake(cluster, work, "--forcerun", "embed", "--retries", "0", "--keep-going")
    finally:
        stop.set()
        watcher.join()
    assert failed.returncode != 0 and len(cancelled) == 1
    assert "Error in rule embed" in failed.stderr + failed.stdout
    shards = {p.name for p in (work / "cache/tiny/embedding_shards").glob("*.pt")}
    assert len(shards) == 1  # the cancelled shard left nothing; the other one is complete
    lost = 1 - int(next(iter(shards)).split("-")[0])
    assert not (work / "cache/tiny/image_embeddings.pt").exists()
    finished = (work / f"cache/tiny/embedding_shards/{1 - lost}-of-2.pt").stat().st_mtime_ns
    before = set(jobs(cluster))
    resumed = snakemake(cluster, work, "--until", "merge_embeddings")  # downstream of it is the other tests' work
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resubmitted = [j for i, j in jobs(cluster).items() if i not in before and rule_of(j) == "embed"]
    assert [shard_of(j) for j in resubmitted] == [lost]  # the finished shard is not recomputed
    assert (work / f"cache/tiny/embedding_shards/{1 - lost}-of-2.pt").stat().st_mtime_ns == finished
    assert (work / "cache/valid_indices.pt").stat().st_mtime_ns == keep  # finished outputs kept
    assert torch.load(work / "cache/tiny/image_embeddings.pt").shape[0] == 80  # both shards merged
