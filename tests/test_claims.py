"""Two grids at once: a cell is claimed by one process, and a dead holder's claim is
taken over."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from paperlib.run.profiles import load_grid
from paperlib.run.store import CLAIM_GRACE_S, claim, holder_alive, lock_path, release


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_cell_claimed_by_a_live_process_is_not_claimed_again(tmp_path):
    result = tmp_path / "cell.json"
    assert claim(result)
    assert not claim(result)  # this very process holds it
    release(result)
    assert claim(result)


def test_the_claim_of_a_dead_holder_is_taken_over(tmp_path):
    result = tmp_path / "cell.json"
    lock_path(result).write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename}))
    assert not holder_alive(lock_path(result))
    assert claim(result)
    assert json.loads(lock_path(result).read_text())["pid"] == os.getpid()


def test_a_holder_on_another_machine_counts_as_alive(tmp_path):
    result = tmp_path / "cell.json"
    lock_path(result).write_text(json.dumps({"pid": _dead_pid(), "host": "another-node"}))
    assert not claim(result)


def test_an_empty_lock_is_fresh_for_a_while_then_stale(tmp_path):
    result = tmp_path / "cell.json"
    lock = lock_path(result)
    lock.write_text("")  # a claim being written, or a crash right after creating it
    assert not claim(result)
    old = time.time() - CLAIM_GRACE_S - 1
    os.utime(lock, (old, old))
    assert claim(result)


def _summary(output: str) -> dict[str, int]:
    line = re.search(r"density: (.*)", output).group(1)
    return {k: int(n) for n, k in re.findall(r"(\d+) (ran|skipped|failed|held)", line)}


@pytest.mark.slow
def test_two_grids_at_once_run_every_cell_exactly_once(tmp_path):
    # One core each: two kernels of two threads apiece on a two-core machine would
    # spend their time waiting on each other.
    env = os.environ | {"PAPERLIB_OUTPUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "paperlib", "grid", "--profile", "smoke"]
    command += ["--experiment", "density", "--workers", "1"]
    grids = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [grid.communicate(timeout=600)[0] for grid in grids]
    assert [grid.returncode for grid in grids] == [0, 0], outputs
    summaries = [_summary(out) for out in outputs]
    ran = sum(s["ran"] for s in summaries)
    cells = len(load_grid("density", "smoke"))
    assert ran == cells, outputs  # every cell of the smoke density grid, once
    assert all(s["failed"] == 0 for s in summaries)
    assert not list((tmp_path / "results").rglob(".*.lock"))  # every claim released
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert _summary(again.stdout) == {"ran": 0, "skipped": cells, "failed": 0, "held": 0}


def test_a_holder_that_died_unreaped_counts_as_dead(tmp_path):
    # A killed grid's workers stay zombies where nothing reaps orphans (as in containers).
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.time() + 30
        while time.time() < deadline and "Z" not in open(f"/proc/{zombie.pid}/stat").read():
            time.sleep(0.05)
        result = tmp_path / "cell.json"
        lock_path(result).write_text(json.dumps({"pid": zombie.pid, "host": os.uname().nodename}))
        assert claim(result)
    finally:
        zombie.wait()
