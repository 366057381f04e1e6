"""System packages the heavier tests need (a SLURM cluster, a browser): installed once, before pytest, by
tests/install-system-packages.sh (`make test` runs it); a fixture only checks that they are there."""

from __future__ import annotations

import shutil


class Unavailable(Exception):
    """The test cannot run here; the message says why."""


def require_tools(tools: tuple[str, ...]) -> None:
    """Raise Unavailable naming the tools missing from PATH and the script that installs them."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not on PATH: run tests/install-system-packages.sh (as root)")
