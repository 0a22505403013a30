"""Run an experiment's grid: one papermill execution of its notebook per cell.

A cell whose result exists with a matching config hash is skipped, so a rerun after a
crash resumes where it stopped. A failing cell is recorded and the others still run.
Cells run here (``executor="local"``, in parallel workers if asked) or as a Slurm job
array through submitit (``executor="slurm"``); both paths run the same ``run_cell``.
"""

from __future__ import annotations

import contextlib
import getpass
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from tqdm import tqdm
from traitlets import CaselessStrEnum

from paperlib.core.registry import EXECUTORS
from paperlib.core.settings import CELLS_PER_GPU_ENV, ConfigError, as_dict
from paperlib.run.profiles import cell_hash, load_grid, load_profile
from paperlib.run.results import is_done
from paperlib.run.splits import data_identity, load_profile_data
from paperlib.run.store import (
    NOTEBOOKS_DIR,
    REPO_ROOT,
    claim,
    live_claims,
    output_root,
    process_alive,
    release,
    remove_dead_claims,
    remove_stale_temporaries,
    result_path,
    run_path,
    write_json,
)

KERNEL = "python3"
KERNEL_SOCKET_PREFIX = "paperlib-kernel-"


_sockets_of_this_process: list[str] = []  # kernel socket prefixes created here


def _remove_own_sockets() -> None:
    """Delete the socket files of the kernels this process started (they are shut down
    by now, or being shut down after an interrupt)."""
    while _sockets_of_this_process:
        prefix = Path(_sockets_of_this_process.pop())
        for path in prefix.parent.glob(f"{prefix.name}-*"):
            path.unlink(missing_ok=True)


def remove_orphan_sockets() -> int:
    """Delete the kernel sockets (``paperlib-kernel-<pid>-...``) whose owning process is
    gone, as after a killed grid; return how many."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{KERNEL_SOCKET_PREFIX}*"):
        owner = path.name[len(KERNEL_SOCKET_PREFIX) :].split("-")[0]
        if owner.isdigit() and process_alive(int(owner)):
            continue
        path.unlink(missing_ok=True)  # a dead owner's, or an older unnamed one
        removed += 1
    return removed


class _IPCKernelManager(AsyncKernelManager):
    """Talks to the kernel over Unix sockets in the temp folder instead of localhost TCP."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Named after the process that owns the kernel, so that the sockets of one that
        # was killed can be found and removed (``remove_orphan_sockets``).
        name = f"{KERNEL_SOCKET_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.ip = str(Path(tempfile.gettempdir()) / name)
        _sockets_of_this_process.append(self.ip)

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts a kernel before every shutdown. Ours are idle by then
        # (a cell that overran was already interrupted by papermill), and the SIGINT only
        # makes ipykernel log a spurious "KeyboardInterrupt caught in kernel" error.
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


# A kernel can fail to start under load: ZMQ's "address already in use" (papermill
# #511), or no answer within the start-up timeout (#776). Such a start is retried with
# backoff; an error raised by the notebook's own code never is.
KERNEL_START_ATTEMPTS = 3
KERNEL_RETRY_BACKOFF_S = 2.0  # doubled after each failed start


def execute_notebook(
    name: str, output: Path, parameters: dict[str, Any], recorded_as: Path | None = None
) -> None:
    """Run ``notebooks/<name>.ipynb`` with papermill, writing the executed copy to ``output``.

    papermill records where the notebook came from and went; the executed copy keeps
    those paths relative to the repository (``recorded_as``, default ``output``), so
    committed runs name no folder of the machine that ran them.
    """
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            pm.execute_notebook(
                NOTEBOOKS_DIR / f"{name}.ipynb",
                output,
                parameters=parameters,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(NOTEBOOKS_DIR),
                kernel_manager_class=_IPCKernelManager,
            )
            break
        except Exception as err:
            if attempt == KERNEL_START_ATTEMPTS or not _kernel_never_started(err, Path(output)):
                raise
            wait = KERNEL_RETRY_BACKOFF_S * 2 ** (attempt - 1)
            print(
                f"kernel for {name} ({Path(recorded_as or output).stem}) failed to start: "
                f"{type(err).__name__}: {err}; retry {attempt} of {KERNEL_START_ATTEMPTS - 1} "
                f"in {wait:g} s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(wait)
        finally:
            _remove_own_sockets()
            if Path(output).exists():
                relative_papermill_paths(Path(output), f"notebooks/{name}.ipynb", recorded_as)


def _kernel_never_started(err: Exception, output: Path) -> bool:
    """Whether ``err`` is a kernel that failed to start, before any code cell ran (so a
    retry cannot run anything twice)."""
    from nbclient.exceptions import DeadKernelError
    from zmq.error import ZMQError

    starting = isinstance(err, ZMQError | DeadKernelError | TimeoutError) or (
        isinstance(err, RuntimeError) and "didn't respond" in str(err)
    )
    if not starting:
        return False
    if not output.exists():
        return True
    nb = nbformat.read(output, as_version=4)
    return not any(c.get("metadata", {}).get("papermill", {}).get("start_time") for c in nb.cells)


def relative_papermill_paths(notebook: Path, source: str, recorded_as: Path | None) -> None:
    """Rewrite papermill's ``input_path`` and ``output_path`` metadata of ``notebook``."""
    nb = nbformat.read(notebook, as_version=4)
    meta = nb.metadata.get("papermill")
    if meta is None:
        return
    target = Path(recorded_as or notebook).resolve()
    meta["input_path"] = source
    meta["output_path"] = (
        str(target.relative_to(REPO_ROOT)) if target.is_relative_to(REPO_ROOT) else target.name
    )
    nbformat.write(nb, notebook)


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm array task asks for. One task runs one cell."""

    partition: str | None = None  # None: the cluster's default partition
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    timeout_min: int = 240


@dataclass(frozen=True)
class CellOutcome:
    cell: str
    # "ran", "skipped", "failed", "held" (another grid is running it) or "interrupted"
    status: str
    notebook: Path
    error: str | None = None


def run_grid(
    profile_name: str,
    experiment: str,
    *,
    data_path: str | None = None,
    extra_parameters: dict[str, dict[str, Any]] | None = None,
    only: list[str] | None = None,
    workers: int | None = None,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    progress: bool = True,
) -> list[CellOutcome]:
    """Execute every unfinished cell of ``experiment`` in profile ``profile_name``.

    ``extra_parameters`` maps a cell id to more papermill parameters for that cell only
    (for debugging one cell, or injecting a fault in a test). ``only`` restricts the
    grid to the cells it names. ``workers`` cells run at
    once; locally the default is the profile's ``grid.workers_per_gpu`` on each visible
    GPU, or its ``grid.workers`` on a machine without one, and on Slurm it is every cell
    at once (as the cluster allows).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of {list(EXECUTORS)}")
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError(
            "executor 'slurm' submits with sbatch, which is not on PATH: run the grid on a "
            "Slurm login node, or use --executor local"
        )
    profile = load_profile(profile_name)  # both raise ConfigError before any compute
    cells = load_grid(experiment, profile.name)
    if only is not None:
        unknown = sorted(set(only) - {c.cell_id for c in cells})
        if unknown:
            raise ConfigError(
                f"no cell {', '.join(unknown)} in the {experiment} grid of profile "
                f"{profile.name!r}; its cells are {', '.join(c.cell_id for c in cells)}"
            )
        cells = [c for c in cells if c.cell_id in only]
    # A killed grid leaves its claims; temporaries are stale only when no other grid is
    # at work on this experiment.
    remove_dead_claims(output_root() / "results" / profile.name / experiment)
    if not live_claims(output_root() / "results" / profile.name / experiment):
        for kind in ("results", "runs"):
            remove_stale_temporaries(output_root() / kind / profile.name / experiment)
    outcomes, jobs = {}, []
    for cell in cells:
        expected = cell_hash(profile, experiment, cell, data_identity(profile, data_path))
        if is_done(result_path(profile.name, experiment, cell.cell_id), expected):
            path = run_path(profile.name, experiment, cell.cell_id)
            outcomes[cell.cell_id] = CellOutcome(cell.cell_id, "skipped", path)
            continue
        parameters = {"profile": profile.name, **as_dict(cell)}
        if data_path is not None:
            parameters["data_path"] = str(data_path)
        parameters |= (extra_parameters or {}).get(cell.cell_id, {})
        jobs.append((profile.name, experiment, cell.cell_id, parameters, expected))
    if executor == "local" and len(jobs) > 1:
        # Decode the data (or find it cached) once, here: parallel cells would each
        # build the cache at once, and a missing copy fails before any cell starts.
        load_profile_data(profile, data_path)
    bar = tqdm(
        total=len(cells),
        initial=len(outcomes),
        unit="cell",
        disable=not progress,
        desc=f"{experiment} grid ({profile.name})",
    )
    remove_orphan_sockets()
    if executor == "slurm":
        logs = output_root() / "results" / profile.name / experiment / "slurm"
        finished = _execute_on_slurm(jobs, workers, slurm or SlurmOptions(), logs)
    else:
        finished = _execute_all(jobs, workers or profile.grid.workers_here(len(visible_gpus())))
    try:
        for outcome in finished:
            outcomes[outcome.cell] = outcome
            bar.set_postfix(cell=outcome.cell)
            bar.update()
    except KeyboardInterrupt:
        # Ctrl-C: the running cells were stopped (their kernels shut down, their partial
        # notebooks and claims removed); what finished is kept, and a rerun resumes.
        finished.close()
        for cell in cells:
            if cell.cell_id not in outcomes:
                path = run_path(profile.name, experiment, cell.cell_id)
                outcomes[cell.cell_id] = CellOutcome(cell.cell_id, "interrupted", path)
    finally:
        bar.close()
        remove_orphan_sockets()
    return [outcomes[cell.cell_id] for cell in cells]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    import torch  # only here: the grid runner itself never touches a device

    count = torch.cuda.device_count()
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (
        [d.strip() for d in named.split(",")][:count] if named else [str(i) for i in range(count)]
    )


def threads_per_worker(workers: int) -> int:
    """CPU threads each of ``workers`` parallel workers gets: an equal share of the cores."""
    return max(1, len(os.sched_getaffinity(0)) // workers)


def _execute_all(jobs: list[tuple], workers: int):
    """Yield each job's outcome as it finishes, running ``workers`` at a time."""
    gpus = visible_gpus()
    if workers == 1 or len(jobs) <= 1:
        yield from (run_cell(*job) for job in jobs)
        return
    pids = multiprocessing.get_context("spawn").SimpleQueue()
    pool = worker_pool(workers, gpus, pids)
    futures = [pool.submit(run_cell, *job) for job in jobs]
    try:
        yield from (f.result() for f in as_completed(futures))
    except (KeyboardInterrupt, GeneratorExit):
        for future in futures:
            future.cancel()
        while not pids.empty():  # each worker stops its cell and shuts its kernel down
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids.get(), signal.SIGINT)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_pool(workers: int, gpus: list[str], pids=None) -> ProcessPoolExecutor:
    """``workers`` fresh interpreters, each pinned to a GPU (round robin, if any) and to
    an equal share of the CPU cores, for the notebook kernels they start. Each puts
    its process id on ``pids``, so that an interrupt can reach it."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker
    devices = context.Queue()
    for slot in gpu_slots(workers, gpus):
        devices.put(slot)
    return ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_pin_worker,
        initargs=(devices, threads_per_worker(workers), pids),
    )


def _execute_on_slurm(jobs: list[tuple], workers: int | None, options: SlurmOptions, logs: Path):
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


def gpu_slots(workers: int, gpus: list[str]) -> list[tuple[str | None, int]]:
    """Per worker, its GPU (round robin; None without one) and how many workers share it."""
    devices = [gpus[slot % len(gpus)] if gpus else None for slot in range(workers)]
    return [(device, devices.count(device)) for device in devices]


def _pin_worker(devices, threads: int, pids=None) -> None:
    """In a worker: claim one GPU (if any) and a share of the cores for its kernels, and
    tell them how many workers share that GPU, for the memory budget of their passes."""
    if pids is not None:
        pids.put(os.getpid())
    device, sharing = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        os.environ[CELLS_PER_GPU_ENV] = str(sharing)
    # Without a share each kernel starts a thread per core, and parallel cells fight over
    # them. CPU arithmetic depends on the thread count, so results compare exactly only
    # between runs with the same share. A share the user set is kept.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def run_cell(
    profile: str, experiment: str, cell_id: str, parameters: dict[str, Any], expected_hash: str
) -> CellOutcome:
    """Execute one cell's notebook with papermill; the executed notebook lands atomically.

    The cell is claimed first (``store.claim``): a cell that another grid is running is
    left to it ("held"), and one that it finished meanwhile is skipped.
    """
    final = run_path(profile, experiment, cell_id)
    result = result_path(profile, experiment, cell_id)
    if not claim(result):
        return CellOutcome(cell_id, "held", final, "another grid is running this cell")
    try:
        if is_done(result, expected_hash):
            return CellOutcome(cell_id, "skipped", final)
        return _execute_claimed(experiment, cell_id, parameters, expected_hash, final, result)
    finally:
        release(result)


def _execute_claimed(experiment, cell_id, parameters, expected_hash, final, result):
    partial = final.with_name(f".{final.stem}.partial.tmp.ipynb")
    failed = final.with_suffix(".failed.ipynb")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        execute_notebook(experiment, partial, parameters, recorded_as=final)
        if not is_done(result, expected_hash):
            raise RuntimeError("the notebook finished without writing a matching result")
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)  # stopped, not failed: a rerun runs it again
        raise
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the grid goes on
        if getattr(err, "ename", None) == "KeyboardInterrupt":  # Ctrl-C reached the kernel
            partial.unlink(missing_ok=True)
            raise KeyboardInterrupt from err
        return _record_failure(cell_id, partial, failed, err)
    os.replace(partial, final)
    failed.unlink(missing_ok=True)
    failed.with_suffix(".json").unlink(missing_ok=True)
    return CellOutcome(cell_id, "ran", final)


def _record_failure(
    cell_id: str, partial: Path | None, failed: Path, err: Exception, traceback: Path | None = None
) -> CellOutcome:
    """Write the failure record; ``traceback`` is where to read the error (default: ``failed``)."""
    if partial is not None and partial.exists():
        os.replace(partial, failed)
    traceback = traceback or failed
    # A notebook's own exception is the useful part of papermill's error.
    name, text = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    lines = str(text).strip().splitlines() or [""]
    message = f"{name}: {lines[0]}"[:500]
    try:
        write_json(
            failed.with_suffix(".json"),
            {"cell": cell_id, "error": message, "traceback": str(traceback)},
        )
    except OSError as err:  # a full disk takes the record too: say so, go on
        failed.unlink(missing_ok=True)  # the notebook papermill could not finish writing
        message = f"{message}; and no failure record: {err.strerror}"
    return CellOutcome(cell_id, "failed", traceback, message)


def summarize(outcomes: list[CellOutcome]) -> str:
    statuses = ("ran", "skipped", "failed", "held", "interrupted")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    lines = [", ".join(f"{n} {s}" for s, n in counts.items())]
    lines += [
        f"FAILED {o.cell}: {o.error}\n  traceback: {o.notebook}"
        for o in outcomes
        if o.status == "failed"
    ]
    return "\n".join(lines)
