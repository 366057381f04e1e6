"""A real single-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd.

Partitions `cpu` (default) and `gpu`; the node advertises one GPU through GRES (File=/dev/null, so no device is
needed). Every daemon is started here and stopped by the PID recorded here, never by name. `slurm-wlm` and `munge`
come from tests/install-system-packages.sh.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from system import require_tools

NODE = "localhost"
CTLD_PORT = 16817


def _conf(root: Path, cpus: int, memory_mb: int) -> str:
    return f"""\
ClusterName=astroclip-test
SlurmctldHost={NODE}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPort={CTLD_PORT}
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
GresTypes=gpu
SlurmdParameters=config_overrides
SlurmctldParameters=enable_configless
ReturnToService=2
MinJobAge=300
DefMemPerCPU=1000
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={NODE} CPUs={cpus} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={NODE} MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    root: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}

    def run(self, *cmd: str) -> str:
        return subprocess.run(list(cmd), env=self.env, check=True, capture_output=True, text=True).stdout

    def start(self, cpus: int = 2, memory_mb: int = 20000) -> Cluster:
        require_tools(("slurmctld", "slurmd", "munged", "sbatch", "mungekey"))
        shutil.rmtree(self.root, ignore_errors=True)  # a drained state must not survive a bring-up
        for sub in ("state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True)
        (self.root / "slurm.conf").write_text(_conf(self.root, cpus, memory_mb))
        (self.root / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File=/dev/null\n")
        munge = self.root / "munge"
        os.chmod(munge, 0o700)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True)
        socket = Path("/run/munge/munge.socket.2")
        socket.parent.mkdir(parents=True, exist_ok=True)
        self._spawn(
            ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={socket}",
             f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log", f"--seed-file={munge}/seed"],
            "munged",
        )
        self._wait(lambda: socket.exists(), "munged socket")
        self._spawn(["slurmctld", "-D", "-i", "-f", str(self.root / "slurm.conf")], "slurmctld")
        self._wait(lambda: self._ok("scontrol", "ping"), "slurmctld")
        # Configless slurmd: jobs then see the config slurmd fetched (SLURM_CONF), so srun inside a job works.
        self._spawn(["slurmd", "-D", "--conf-server", f"{NODE}:{CTLD_PORT}"], "slurmd")
        self._wait(lambda: "idle" in self._out("sinfo", "-h", "-n", NODE, "-o", "%T"), "node idle")
        return self

    def _spawn(self, cmd: list[str], name: str) -> None:
        log = open(self.root / f"{name}.stdout", "w")
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _ok(self, *cmd: str) -> bool:
        return subprocess.run(list(cmd), env=self.env, capture_output=True).returncode == 0

    def _out(self, *cmd: str) -> str:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True).stdout

    def _wait(self, ready, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}; see {self.root}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}; see {self.root}")

    def stop(self) -> None:
        """Stop every daemon started here, by PID, newest first."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()
