"""What produced a result: code version, packages, device, data source, time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import platform
import resource
import subprocess

import torch
import yaml

from paperlib.run.splits import Splits
from paperlib.run.store import REPO_ROOT

# The folders the grid writes its results and executed notebooks to (committed for the
# study): a change there is output, not code.
OUTPUT_FOLDERS = ("results", "runs")
PACKAGES = ("paperlib", "torch", "torchvision", "numpy", "captum", "torchattacks", "papermill")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)


def git_state() -> dict:
    """Commit and dirty flag of the repository, or None outside a git checkout."""
    head = _git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    # The grid's own outputs are tracked too (the committed study), and a rerun rewrites
    # them; only the code and parameters can make a result differ from its commit.
    outputs = [f":(exclude){folder}" for folder in OUTPUT_FOLDERS]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs)
    dirty = status.stdout.strip() != ""
    return {"commit": head.stdout.strip(), "dirty": dirty}


# What a cell's numbers depend on: the science layer and the notebooks the grid executes.
CELL_CODE = (
    "paperlib/core",
    "notebooks/density.py",
    "notebooks/adversarial.py",
    "notebooks/attribution.py",
    "notebooks/deepfool_check.py",
)
# The commits at which the cell code last changed what a cell computes.
BEHAVIOUR_CHANGES = REPO_ROOT / "params" / "cell_behaviour.yaml"


def last_behaviour_change() -> str:
    """The latest commit listed in ``params/cell_behaviour.yaml``."""
    with open(BEHAVIOUR_CHANGES) as handle:
        changes = yaml.safe_load(handle)["changes"]
    return changes[-1]["commit"]


def changed_since(commit: str | None) -> list[str] | None:
    """The files of ``CELL_CODE`` whose behaviour today differs from what made a result
    at ``commit`` ([] when none does): none when ``commit`` comes after the last
    behaviour change, else the files that differ between ``commit`` and that change.
    None when that cannot be told (no commit recorded, or one this checkout lacks)."""
    if not commit:
        return None
    last = last_behaviour_change()
    after = _git("merge-base", "--is-ancestor", last, commit)
    if after.returncode == 0:
        return []
    if after.returncode != 1:  # 128: one of the commits is not in this checkout
        return None
    diff = _git("diff", "--name-only", commit, last, "--", *CELL_CODE)
    if diff.returncode != 0:
        return None
    return diff.stdout.split()


def package_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description(device: torch.device) -> str:
    """The GPU's name, or the CPU's architecture, vector instructions and threads. A CPU
    model's weights depend on its vector instructions as well as on the thread count:
    two machines with the same thread count can train different models from one seed."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    machine = platform.processor() or platform.machine()
    vector = torch.backends.cpu.get_cpu_capability()
    return f"CPU ({machine}, {vector}, {torch.get_num_threads()} threads)"


def cpu_seconds() -> float:
    """Processor time (user and system) this process and its finished children have used.

    Beside the wall time it prices a cell without what the wall clock also counts:
    other work sharing the cores, and time the run spent stopped."""
    used = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        used += usage.ru_utime + usage.ru_stime
    return used


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What produced a cell's result."""

    commit: str | None  # None outside a git checkout
    dirty: bool | None
    packages: dict[str, str | None]
    device: str
    # CPU arithmetic depends on the thread count: results compare exactly only between
    # runs with the same count.
    threads: int
    seed: int
    data_source: str
    data_note: str
    started_at: str
    wall_seconds: float
    cpu_seconds: float | None = None  # absent from results written before it was recorded


def provenance(
    *, device: torch.device, seed: int, splits: Splits, started: dt.datetime
) -> Provenance:
    """What produced a cell's result: code, packages, device, threads, seed, data, time.

    The times cover the whole kernel: ``wall_seconds`` from ``started``, ``cpu_seconds``
    from the kernel's start, so it includes the imports and the data decode as well."""
    finished = dt.datetime.now(dt.UTC)
    return Provenance(
        **git_state(),
        packages=package_versions(),
        device=device_description(device),
        threads=torch.get_num_threads(),
        seed=seed,
        data_source=splits.source,
        data_note=splits.note,
        started_at=started.isoformat(timespec="seconds"),
        wall_seconds=round((finished - started).total_seconds(), 1),
        cpu_seconds=round(cpu_seconds(), 1),
    )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
