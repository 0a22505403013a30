"""A real single-node Slurm cluster on localhost, for testing the Slurm executor.

Everything (munge key and socket, Slurm state, spool, logs) lives in one folder, and
the daemons listen on free ports, so nothing touches the machine's own Slurm or munge
set-up. It needs Debian's ``slurm-wlm`` and ``munge`` packages, and root (slurmd
runs jobs as their submitting user).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from helpers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo")


def missing_reason() -> str | None:
    """Why a local cluster cannot start here, or None when it can."""
    absent = [d for d in DAEMONS if shutil.which(d) is None]
    if absent:
        return f"Slurm is absent ({', '.join(absent)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def _node_line() -> str:
    """This machine's hardware as slurmd sees it, so the node is never drained as smaller."""
    found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(x for x in found.splitlines() if x.startswith("NodeName="))
    return f"{line} NodeAddr=127.0.0.1 State=UNKNOWN"


def _config(root: Path) -> str:
    host = _node_line().split()[0].removeprefix("NodeName=")
    return f"""\
ClusterName=paperlib-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
# No cgroups, accounting database or MPI: a bare node that just runs jobs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
{_node_line()}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _wait_for_idle_node(env: dict, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        run = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
        state = run.stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the local Slurm node never became idle (state {state!r}); see its logs")


def _stop(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


def job_steps(conf: Path) -> list[int]:
    """The slurmstepd processes of the cluster whose configuration is ``conf``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or (proc / "comm").read_text().strip() != "slurmstepd":
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if f"SLURM_CONF={conf}".encode() in environ:
            found.append(int(proc.name))
    return found


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                # The parent's pid is the second field after the parenthesised name.
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return tree


def _kill_job_steps(conf: Path) -> None:
    """Job steps outlive slurmd by design (so that it can restart), and so do the tasks
    they run; left alone, both would outlive the test run. Kill them, tasks first."""
    tree = _children()
    for step in job_steps(conf):
        doomed, stack = [], [step]
        while stack:
            pid = stack.pop()
            doomed.append(pid)
            stack += tree.get(pid, [])
        for pid in reversed(doomed):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10  # SIGKILL is delivered, not awaited
        while any(_alive(pid) for pid in doomed) and time.monotonic() < deadline:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, or anything but a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextmanager
def local_slurm(root: Path):
    """Start munged, slurmctld and slurmd; yield the environment that reaches them."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # munge clients must reach the socket inside
    for folder in ("state", "spool"):
        (root / folder).mkdir(exist_ok=True)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = root / "slurm.conf"
    conf.write_text(_config(root))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge = [
        "munged",
        "--force",
        f"--key-file={key}",
        f"--socket={root}/munge.socket",
        f"--pid-file={root}/munged.pid",
        f"--log-file={root}/munged.log",
        f"--seed-file={root}/munged.seed",
    ]
    try:
        subprocess.run(munge, check=True, env=env)
        subprocess.run(["slurmctld", "-i"], check=True, env=env)
        subprocess.run(["slurmd"], check=True, env=env)
        _wait_for_idle_node(env)
        yield env
    finally:
        for daemon in ("slurmd", "slurmctld", "munged"):
            _stop(root / f"{daemon}.pid")
        _kill_job_steps(conf)
