"""System packages the heavier tests need (a SLURM cluster, a browser), installed with apt-get when missing."""

from __future__ import annotations

import os
import shutil
import subprocess


class Unavailable(Exception):
    """The test cannot run here (not root, no apt-get); the message says why."""


def ensure_packages(tools: tuple[str, ...], packages: tuple[str, ...]) -> None:
    """Install `packages` with apt-get unless every one of `tools` is already on PATH."""
    if all(shutil.which(tool) for tool in tools):
        return
    what = ", ".join(packages)
    if os.geteuid() != 0:
        raise Unavailable(f"{what} not installed and installing needs root")
    if not shutil.which("apt-get"):
        raise Unavailable(f"{what} not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, capture_output=True)
