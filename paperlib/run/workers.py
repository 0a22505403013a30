"""Cells run here, in parallel workers: fresh interpreters, each pinned to a GPU (round
robin) and to an equal share of the CPU cores, stopped together on an interrupt, or
drained on SIGUSR1: the cells in flight finish and no other starts."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed

from paperlib.core.memory import cpu_cell_peak
from paperlib.core.registry import ARCHITECTURE_EXPERIMENTS
from paperlib.core.settings import CELLS_PER_GPU_ENV, ConfigError, Profile
from paperlib.run.cells import run_cell


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def stopped_by_signals():
    """While the grid runs, Ctrl-C and SIGTERM both stop it as an interrupt does: the
    running cells are stopped, their kernels shut down, and a rerun resumes.

    Two defaults would defeat that. A grid started in the background by a non-interactive
    shell (``nohup ... &``) inherits SIGINT ignored, so Python never raises
    KeyboardInterrupt. And ``kill`` or a batch system's cancellation sends SIGTERM, which
    ends the grid at once and leaves its workers and kernels computing as orphans."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


GIB = 1 << 30


def machine_memory() -> int:
    """Bytes of memory this machine has."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def workers_that_fit(
    profile: Profile, experiment: str, cells: list, workers: int, chosen: bool
) -> int:
    """How many of ``workers`` cells fit in this machine's memory at once on a CPU, where
    no pass is split (``memory.cpu_cell_peak`` of ``cells``, those about to run). A
    profile's own count is lowered, with a note; a count the user ``chosen`` that does
    not fit, or a cell that fits nowhere here, is an error that says what to do. Without
    this, a kernel out of memory dies mid-cell (in DeepFool, for ResNet-26 on the study
    profile: about 10 GB each), and the cell's failure reads only "Kernel died"."""
    # Only these can outgrow a CPU machine's memory: experiment 1's network and the
    # DeepFool check's 40 images are small.
    if experiment not in ARCHITECTURE_EXPERIMENTS or not cells:
        return workers
    stage, peak, arch = max(
        ((*cpu_cell_peak(profile, experiment, a), a) for a in sorted({c.arch for c in cells})),
        key=lambda found: found[1],
    )
    total = machine_memory()
    fit = min(workers, total // peak)
    if fit == workers:
        return workers
    why = (
        f"a {arch} cell of profile {profile.name!r} holds about {peak / GIB:.1f} GiB in "
        f"{stage} on a CPU, where no pass is split, and this machine has {total / GIB:.1f} GiB"
    )
    if fit == 0:
        raise ConfigError(f"{why}: run it on a GPU, where passes are split, or with more memory")
    if chosen:
        raise ConfigError(f"{workers} cells at once do not fit: {why}. Run with --workers {fit}")
    print(f"running {fit} cell(s) at once, not the profile's {workers}: {why}")
    return fit


class NotStarted(Exception):
    """A worker's answer to a job it was handed after the grid began to drain."""


@contextlib.contextmanager
def drained_by_sigusr1():
    """A drain request: an event that SIGUSR1 sets while the grid runs, shared with its
    workers, which start no job once it is set. A user who must stop at a set time lets
    the cells in flight finish this way (an interrupt would lose them)."""
    draining = multiprocessing.get_context("spawn").Event()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: draining.set())
    try:
        yield draining
    finally:
        signal.signal(signal.SIGUSR1, previous)


def execute_locally(jobs: list[tuple], workers: int, run=None, draining=None):
    """Yield each job's outcome (``run(*job)``, by default ``run_cell``) as it finishes,
    ``workers`` at a time. Once ``draining`` (from ``drained_by_sigusr1``) is set, no
    job starts; those are not yielded."""
    run = run or run_cell  # looked up now: a test may stand in for it
    if draining is None:  # nobody can ask this run to drain
        draining = multiprocessing.get_context("spawn").Event()
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            if draining.is_set():
                return
            yield run(*job)
        return
    yield from _execute_in_workers(jobs, workers, run, draining)


def _execute_in_workers(jobs: list[tuple], workers: int, run, draining):
    """``execute_locally`` in a pool of ``workers`` fresh interpreters."""
    pids = multiprocessing.get_context("spawn").SimpleQueue()
    pool = worker_pool(workers, visible_gpus(), pids, draining)
    futures = [pool.submit(_run_unless_stopped, run, *job) for job in jobs]
    try:
        for future in as_completed(futures):
            with contextlib.suppress(NotStarted):
                yield future.result()
    except (KeyboardInterrupt, GeneratorExit):
        for future in futures:
            future.cancel()
        while not pids.empty():  # each worker stops its cell and shuts its kernel down
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids.get(), signal.SIGINT)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_pool(workers: int, gpus: list[str], pids=None, draining=None) -> ProcessPoolExecutor:
    """``workers`` fresh interpreters, each pinned to a GPU (round robin, if any) and to
    an equal share of the CPU cores, for the notebook kernels they start. Each puts
    its process id on ``pids``, so that an interrupt can reach it, and starts no job
    once ``draining`` is set."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker
    devices = context.Queue()
    for slot in gpu_slots(workers, gpus):
        devices.put(slot)
    return ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_pin_worker,
        initargs=(devices, threads_per_worker(workers), pids, draining),
    )


def gpu_slots(workers: int, gpus: list[str]) -> list[tuple[str | None, int]]:
    """Per worker, its GPU (round robin; None without one) and how many workers share it."""
    devices = [gpus[slot % len(gpus)] if gpus else None for slot in range(workers)]
    return [(device, devices.count(device)) for device in devices]


# A worker's state, for its SIGINT handler: whether the grid has stopped it, and whether
# a cell is running in it now; and the grid's drain request, which it checks before a job.
_stopped = False
_in_cell = False
_draining = None


def _stop_worker(signum, frame) -> None:
    """In a worker, on the grid's SIGINT: stop the running cell and start no other.

    The pool hands each worker jobs it has already queued (it cannot cancel those), so a
    worker that only stopped its cell would claim the next one and run it to the end."""
    global _stopped
    _stopped = True
    if _in_cell:
        raise KeyboardInterrupt("the grid was stopped")


def _run_unless_stopped(run, *job):
    """In a worker: ``run(*job)``, unless the grid has stopped this worker."""
    global _in_cell
    _in_cell = True  # first, so that a SIGINT from now on interrupts the cell
    try:
        if _stopped:
            raise KeyboardInterrupt("the grid was stopped before this cell started")
        if _draining is not None and _draining.is_set():
            raise NotStarted
        return run(*job)
    finally:
        _in_cell = False


def _pin_worker(devices, threads: int, pids=None, draining=None) -> None:
    """In a worker: claim one GPU (if any) and a share of the cores for its kernels, and
    tell them how many workers share that GPU, for the memory budget of their passes."""
    global _draining
    _draining = draining
    # The grid stops a worker with SIGINT, which the worker may have inherited ignored.
    signal.signal(signal.SIGINT, _stop_worker)
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
