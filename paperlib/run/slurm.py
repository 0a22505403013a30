"""Cells run as a Slurm job array through submitit: one task per cell, watched until
each ends, including tasks that Slurm cancels or that die without a result."""

from __future__ import annotations

import getpass
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from paperlib.run.cells import CellOutcome, _record_failure, run_cell
from paperlib.run.store import (
    run_path,
)


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm array task asks for. One task runs one cell."""

    partition: str | None = None  # None: the cluster's default partition
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    timeout_min: int = 240


def execute_on_slurm(jobs: list[tuple], workers: int | None, options: SlurmOptions, logs: Path):
    """Submit the jobs as one Slurm array and yield each outcome as its task ends.

    Tasks inherit this environment (data and output locations) and this interpreter,
    so the cluster's nodes must share the file system, as Slurm clusters do. Each
    task's stdout and stderr land in ``logs``, beside the experiment's results.
    """
    if not jobs:
        return
    import submitit  # only for Slurm runs

    executor = submitit.AutoExecutor(folder=logs / "%j", cluster="slurm")
    executor.update_parameters(
        name=f"paperlib-{jobs[0][1]}",
        timeout_min=options.timeout_min,
        cpus_per_task=options.cpus_per_task,
        slurm_array_parallelism=workers or len(jobs),
        # Without CPU binding, torch would start a thread per core of the node in every
        # task; tasks sharing a node would then fight over cores and crawl.
        slurm_setup=[f"export OMP_NUM_THREADS={options.cpus_per_task}"],
        **({"gpus_per_node": options.gpus_per_task} if options.gpus_per_task else {}),
        **({"slurm_partition": options.partition} if options.partition else {}),
    )
    submitted = executor.map_array(run_cell, *zip(*jobs, strict=True))
    yield from _watch_slurm(dict(zip(submitted, (job[2] for job in jobs), strict=True)), jobs[0])


# How often the grid looks at its Slurm tasks, and how long a task may be gone from the
# queue without its result before it counts as dead (results land on a shared file
# system, which may show them a little late).
SLURM_POLL_S = 5.0
SLURM_GRACE_S = 30.0


def _watch_slurm(cell_of: dict, first_job: tuple):
    """Yield each task's outcome as it ends, including tasks that die without a result.

    submitit learns that a task ended from ``sacct``, which needs Slurm's accounting
    database; without one, a task that was cancelled, ran out of time or crashed would
    be waited for forever. So the grid also asks ``squeue`` which tasks Slurm still
    holds, and records a task that left the queue without a result as failed, with its
    Slurm state (``scontrol``, while Slurm remembers the job) and its log.
    """
    profile, experiment = first_job[0], first_job[1]
    pending, gone_since = dict(cell_of), {}

    def failed(job, cell_id: str, err: Exception) -> CellOutcome:
        failed_notebook = run_path(profile, experiment, cell_id).with_suffix(".failed.ipynb")
        return _record_failure(cell_id, None, failed_notebook, err, traceback=job.paths.stderr)

    while pending:
        queued = _slurm_queue()
        for job, cell_id in list(pending.items()):
            if job.paths.result_pickle.exists():
                del pending[job]
                try:
                    yield job.result()
                except Exception as err:  # noqa: BLE001 - the task itself raised
                    yield failed(job, cell_id, err)
            elif queued is not None and job.job_id not in queued:
                gone_since.setdefault(job, time.monotonic())
                if time.monotonic() - gone_since[job] > SLURM_GRACE_S:
                    del pending[job]
                    state = _slurm_state(job.job_id) or "state unknown"
                    yield failed(
                        job,
                        cell_id,
                        RuntimeError(
                            f"Slurm task {job.job_id} ended without a result ({state}); "
                            f"its log: {job.paths.stderr}"
                        ),
                    )
        if pending:
            time.sleep(SLURM_POLL_S)


def _slurm_queue() -> set[str] | None:
    """Ids (``<job>_<task>``) of the array tasks Slurm still holds, pending or running;
    None when ``squeue`` cannot say (then only result files decide)."""
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--array", "--format=%i", "--user", getpass.getuser()],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    return {line.strip() for line in listed.stdout.splitlines() if line.strip()}


def _slurm_state(job_id: str) -> str | None:
    """The final state Slurm reports for a task (CANCELLED, TIMEOUT, FAILED, ...), while
    it still remembers the job; None after that."""
    try:
        shown = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"JobState=(\S+)", shown.stdout)
    return f"Slurm state {found.group(1)}" if found else None
