"""A full disk: nothing partial is left, the error names the path and the cause, and
what was written before stays intact. The disk is a small tmpfs, which needs root (as
in CI); elsewhere these tests skip."""

import json
import os
import re
import subprocess

import pytest
from torch import nn

from paperlib.run.checkpoints import save_checkpoint
from paperlib.run.grid import run_grid
from paperlib.run.profiles import load_grid
from paperlib.run.store import REPO_ROOT, write_json

ROOM = 8 * 1024  # bytes left free: less than anything the tests then write


@pytest.fixture
def tiny_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk, leave=ROOM):
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))


def _temporaries(folder):
    return [p for p in folder.rglob(".*") if p.is_file()]


def test_a_result_that_does_not_fit_names_the_path_and_leaves_nothing(tiny_disk):
    earlier = tiny_disk / "results" / "earlier.json"
    write_json(earlier, {"accuracy": 0.7})
    _fill(tiny_disk)
    target = tiny_disk / "results" / "new.json"
    message = rf"could not write {re.escape(str(target))}: No space left on device"
    with pytest.raises(OSError, match=message):
        write_json(target, {"values": list(range(50_000))})
    assert not target.exists() and _temporaries(tiny_disk / "results") == []
    assert json.loads(earlier.read_text()) == {"accuracy": 0.7}


def test_a_checkpoint_that_does_not_fit_names_the_path_and_leaves_nothing(tiny_disk):
    _fill(tiny_disk)
    path = tiny_disk / "checkpoints" / "model.pt"
    with pytest.raises(OSError, match=rf"could not write {re.escape(str(path))}"):
        save_checkpoint(path, nn.Linear(100, 100), "key", {}, [])
    assert not path.exists() and _temporaries(tiny_disk / "checkpoints") == []


@pytest.mark.slow
def test_a_cell_that_cannot_write_fails_cleanly_and_the_grid_goes_on(tiny_disk, monkeypatch):
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(tiny_disk))
    monkeypatch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
    first, second, third = (c.cell_id for c in load_grid("density", "smoke")[:3])
    assert [o.status for o in run_grid("smoke", "density", only=[first], progress=False)] == ["ran"]
    written = (tiny_disk / f"results/smoke/density/{first}.json").read_bytes()
    _fill(tiny_disk)
    outcomes = run_grid("smoke", "density", only=[second, third], workers=1, progress=False)
    assert [o.status for o in outcomes] == ["failed", "failed"]  # recorded, not a crash
    assert all("No space left on device" in o.error for o in outcomes), outcomes
    assert (tiny_disk / f"results/smoke/density/{first}.json").read_bytes() == written
    assert _temporaries(tiny_disk / "results") == [] and _temporaries(tiny_disk / "runs") == []
    assert not (tiny_disk / f"results/smoke/density/{second}.json").exists()
