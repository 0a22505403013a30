"""Ctrl-C or SIGTERM on a running grid: kernels and workers stop, nothing temporary is
left, the summary is printed, and a rerun resumes. SIGUSR1 drains it: the cells in
flight finish, and no other starts."""

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest
from helpers import slow_job

from paperlib.__main__ import INTERRUPTED, main
from paperlib.run.cells import CellOutcome
from paperlib.run.kernels import KERNEL_SOCKET_PREFIX
from paperlib.run.profiles import load_grid
from paperlib.run.store import run_path
from paperlib.run.workers import drained_by_sigusr1, execute_locally, stopped_by_signals


def _wait_for(condition, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError("the grid never reached the state the test waits for")


def test_a_stopped_worker_starts_none_of_the_cells_already_queued_for_it(tmp_path):
    """The pool queues a job beyond those running, and cancelling cannot take it back.
    A worker that only stopped its cell took that job next and ran it to the end, so the
    grid stayed alive after SIGTERM, running a cell nobody would keep."""
    jobs = [(str(tmp_path), index) for index in range(6)]
    both_running = lambda: {p.name for p in tmp_path.iterdir()} == {"started-0", "started-1"}  # noqa: E731

    def stop_once_both_run():
        _wait_for(both_running, timeout=120)
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_once_both_run, daemon=True)
    with stopped_by_signals(), pytest.raises(KeyboardInterrupt):
        stopper.start()
        list(execute_locally(jobs, workers=2, run=slow_job))
    stopper.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started-0", "started-1"]


def test_a_drained_pool_finishes_its_cells_in_flight_and_starts_none_of_the_others(tmp_path):
    """SIGUSR1 while two cells run: both finish and are yielded, and none of the four
    others starts, not even the one the pool had already queued for a worker."""
    jobs = [(str(tmp_path), index, 5.0) for index in range(6)]
    both_running = lambda: {p.name for p in tmp_path.iterdir()} == {"started-0", "started-1"}  # noqa: E731

    def drain_once_both_run():
        _wait_for(both_running, timeout=120)
        os.kill(os.getpid(), signal.SIGUSR1)

    drainer = threading.Thread(target=drain_once_both_run, daemon=True)
    before = signal.getsignal(signal.SIGUSR1)
    with drained_by_sigusr1() as draining:
        drainer.start()
        finished = list(execute_locally(jobs, workers=2, run=slow_job, draining=draining))
    drainer.join()
    assert sorted(finished) == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started-0", "started-1"]
    assert signal.getsignal(signal.SIGUSR1) is before  # the handler is restored


@pytest.mark.parametrize("drained_during", ["first", "last"])
def test_a_drained_grid_keeps_its_finished_cells_starts_nothing_more_and_exits_130(
    smoke_env, monkeypatch, capsys, drained_during
):
    """One worker: the drain lands during a density cell, which finishes; the grid starts
    no other cell, nor the next experiment (also when the drain came during the
    experiment's last cell), says so, and exits 130 for a rerun to resume."""
    cells = [c.cell_id for c in load_grid("density", "smoke")]
    draining_cell = cells[0] if drained_during == "first" else cells[-1]
    ran = []

    def drain_during_one(profile, experiment, cell_id, parameters, expected):
        """Stands in for the papermill run; the user drains the grid during one cell."""
        if cell_id == draining_cell:
            os.kill(os.getpid(), signal.SIGUSR1)
        ran.append(cell_id)
        return CellOutcome(cell_id, "ran", run_path(profile, experiment, cell_id))

    monkeypatch.setattr("paperlib.run.workers.run_cell", drain_during_one)
    command = ["grid", "--profile", "smoke", "--experiment", "all", "--workers", "1"]
    assert main(command) == INTERRUPTED
    output = capsys.readouterr().out
    assert ran == cells[: cells.index(draining_cell) + 1]
    left = len(cells) - len(ran)
    summary = f"{len(ran)} ran, 0 skipped, 0 failed, 0 held, 0 interrupted, {left} not started"
    assert f"density: {summary}" in output
    assert "drained: the cells in flight finished; run the same command to resume" in output
    assert "adversarial:" not in output  # the next experiment did not start


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("PAPERLIB_DATA"),
    reason="synthetic smoke cells can finish before the interrupt lands; needs CIFAR-10",
)
@pytest.mark.parametrize(
    ("workers", "stop", "sigint_at_start"),
    [
        # `kill`, or a batch system cancelling the job: without a handler the grid died at
        # once and left its kernels computing as orphans.
        (1, signal.SIGTERM, signal.SIG_DFL),
        # Ctrl-C to a grid started as `nohup ... &` does, with SIGINT ignored, which its
        # workers inherit: without the grid's own handlers it went on regardless.
        (2, signal.SIGINT, signal.SIG_IGN),
    ],
    ids=["sigterm", "sigint-after-nohup"],
)
def test_a_stopped_grid_stops_cleanly_and_a_rerun_resumes(tmp_path, workers, stop, sigint_at_start):
    env = os.environ | {"PAPERLIB_OUTPUT": str(tmp_path)}
    command = [sys.executable, "-m", "paperlib", "grid", "--profile", "smoke"]
    command += ["--experiment", "density", "--workers", str(workers)]
    grid = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Whatever this test run's own disposition, the grid starts with the one the
        # case names.
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint_at_start),
    )
    results, runs = tmp_path / "results/smoke/density", tmp_path / "runs/smoke/density"
    # Interrupt once a cell has finished and another is running.
    _wait_for(lambda: list(results.glob("*.json")) and list(runs.glob(".*.partial.tmp.ipynb")))
    family = psutil.Process(grid.pid).children(recursive=True)
    assert family  # kernels (and workers) are running
    grid.send_signal(stop)
    output = grid.communicate(timeout=300)[0]

    assert grid.returncode == 130, output
    assert re.search(r"density: \d+ ran, .* \d+ interrupted", output), output
    assert "run the same command to resume" in output
    time.sleep(1)
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert not glob.glob(f"{tmp_path}/**/.*tmp*", recursive=True)  # no partial files
    assert not glob.glob(f"{tmp_path}/**/.*.lock", recursive=True)  # every claim released
    pids = [grid.pid, *(p.pid for p in family)]
    sockets = glob.glob(f"{tempfile.gettempdir()}/{KERNEL_SOCKET_PREFIX}*")
    assert not [s for s in sockets if any(f"{KERNEL_SOCKET_PREFIX}{pid}-" in s for pid in pids)]
    finished = len(list(results.glob("*.json")))

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    left = len(load_grid("density", "smoke")) - finished
    assert f"density: {left} ran, {finished} skipped, 0 failed" in rerun.stdout
