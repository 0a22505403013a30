"""The Slurm executor against a real single-node Slurm on localhost (not a mock).

CI installs Debian's slurm-wlm and munge; where they are absent the tests skip.
"""

import json
import logging
import signal
import subprocess
import threading
import time

import pytest
from slurm_cluster import local_slurm, missing_reason

from paperlib.core.settings import ConfigError
from paperlib.run import slurm
from paperlib.run.cells import summarize
from paperlib.run.grid import run_grid
from paperlib.run.slurm import SlurmOptions

# One smoke grid: the path through Slurm is the same for every experiment, and on a
# two-core CI machine each grid adds minutes.
EXPERIMENTS = ("density",)


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with local_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _results(root, experiment):
    folder = root / "results" / "smoke" / experiment
    return {
        p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k != "provenance"}
        for p in sorted(folder.glob("*.json"))
    }


@pytest.mark.slow
def test_the_smoke_grid_on_slurm_matches_a_local_run(slurm_env, smoke_book, tmp_path, monkeypatch):
    for name in ("SLURM_CONF", "PATH"):
        monkeypatch.setenv(name, slurm_env[name])
    out = tmp_path / "output"
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(out))
    # Without an accounting database sacct fails, and submitit says so on every poll;
    # it then goes by the result files, which is all this test needs.
    monkeypatch.setattr(logging.getLogger("submitit"), "level", logging.ERROR)
    # Each task gets as many threads as each local cell had, so the arithmetic is the
    # same and the results can be compared exactly.
    options = SlurmOptions(gpus_per_task=0, cpus_per_task=smoke_book.threads, timeout_min=30)
    for experiment in EXPERIMENTS:
        outcomes = run_grid("smoke", experiment, executor="slurm", slurm=options, progress=False)
        assert {o.status for o in outcomes} == {"ran"}, [o.error for o in outcomes]
        assert _results(out, experiment) == _results(smoke_book.output, experiment)
        logs = sorted((out / "results" / "smoke" / experiment / "slurm").glob("*/*.out"))
        assert len(logs) == len(outcomes)  # one log per array task, beside the results

    # Resume semantics are the local ones: nothing left to do, nothing submitted.
    again = run_grid("smoke", "density", executor="slurm", slurm=options, progress=False)
    assert {o.status for o in again} == {"skipped"}


def test_slurm_without_sbatch_is_a_clear_error(smoke_env, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="sbatch.*--executor local"):
        run_grid("smoke", "density", executor="slurm", progress=False)


def test_an_unknown_executor_is_rejected(smoke_env):
    with pytest.raises(ConfigError, match="unknown executor 'ray'"):
        run_grid("smoke", "density", executor="ray", progress=False)


def _hung(signum, frame):
    raise TimeoutError("the grid is still waiting for a Slurm task that died")


def _array_jobs() -> set[str]:
    """The ids of the array jobs in the queue now."""
    listed = subprocess.run(["squeue", "--noheader", "--format=%F"], capture_output=True, text=True)
    return set(listed.stdout.split())


def _cancel_the_first_running_task(cancelled: list, stop: threading.Event, older: set[str]) -> None:
    """``scancel`` the first array task seen running, of an array job not in ``older``;
    its id goes into ``cancelled``. An earlier test's task may still be finishing (its
    result is written before its process exits), and it must not be the one hit."""
    while not stop.is_set():
        listed = subprocess.run(
            ["squeue", "--noheader", "--array", "--format=%i %T %F"],
            capture_output=True,
            text=True,
        ).stdout.split()
        rows = [listed[i : i + 3] for i in range(0, len(listed) - 2, 3)]
        running = [task for task, state, job in rows if state == "RUNNING" and job not in older]
        if running:
            subprocess.run(["scancel", running[0]], check=True)
            cancelled.append(running[0])
            return
        time.sleep(0.2)


@pytest.mark.slow
def test_a_task_that_dies_without_a_result_is_failed_and_only_it_is_resubmitted(
    slurm_env, smoke_env, monkeypatch
):
    for name in ("SLURM_CONF", "PATH"):
        monkeypatch.setenv(name, slurm_env[name])
    monkeypatch.setattr(logging.getLogger("submitit"), "level", logging.ERROR)
    monkeypatch.setattr(slurm, "SLURM_POLL_S", 0.5)
    monkeypatch.setattr(slurm, "SLURM_GRACE_S", 3.0)
    options = SlurmOptions(gpus_per_task=0, cpus_per_task=1, timeout_min=30)
    cancelled, stop = [], threading.Event()
    killer = threading.Thread(
        target=_cancel_the_first_running_task, args=(cancelled, stop, _array_jobs())
    )
    killer.start()
    # Without an accounting database, submitit alone would wait for the cancelled task
    # forever; the alarm turns such a hang into a failure of this test.
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(900)
    try:
        outcomes = run_grid("smoke", "density", executor="slurm", slurm=options, progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        stop.set()
        killer.join()
    assert len(cancelled) == 1
    failed = [o for o in outcomes if o.status == "failed"]
    assert len(failed) == 1 and {o.status for o in outcomes} == {"ran", "failed"}
    assert f"Slurm task {cancelled[0]} ended without a result" in failed[0].error
    assert "CANCELLED" in failed[0].error
    assert "/slurm/" in str(failed[0].notebook)  # where its log is
    others = len(outcomes) - 1
    assert summarize(outcomes).splitlines()[0].startswith(f"{others} ran, 0 skipped, 1 failed")

    again = run_grid("smoke", "density", executor="slurm", slurm=options, progress=False)
    assert sorted(o.status for o in again) == ["ran"] + ["skipped"] * others
    assert [o.cell for o in again if o.status == "ran"] == [failed[0].cell]
