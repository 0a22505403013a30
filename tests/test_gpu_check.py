"""`make gpu-check`: its dry run on a CPU, and that any failure makes it exit non-zero."""

import json
import subprocess
import sys

import pytest

from paperlib.__main__ import main
from paperlib.core.registry import ATTACKS
from paperlib.run import gpu_check
from paperlib.run.store import REPO_ROOT

# What every architecture runs in both parts; the smoke part also fine-tunes.
CELL_STAGES = {
    "setup",
    "training",
    *ATTACKS,
    "pgd_standard",
    "autoattack",
    "verdicts",
    "grad-cam",
    "grad-cam sensitivity",
    "occlusion",
}


@pytest.mark.slow
def test_the_dry_run_reports_every_stage_with_its_seconds_and_peak_memory(tmp_path):
    """The command itself, as `make gpu-check` runs it on a machine without a GPU."""
    run = subprocess.run(
        [sys.executable, "-m", "paperlib", "gpu-check", "--dry-run", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "dry-run.json").read_text())
    assert report["dry_run"] is True and "CPU" in report["device"] and report["failed"] == 0
    rows = report["stages"]
    for part in ("smoke", "paper"):
        ran = {row["stage"] for row in rows if (row["part"], row["arch"]) == (part, "vgg16")}
        assert ran == CELL_STAGES | ({"fine-tuning"} if part == "smoke" else set())
        density = [row for row in rows if (row["part"], row["arch"]) == (part, "single_layer")]
        assert [row["stage"] for row in density] == ["training"]
    for row in rows:
        assert row["status"] == "ok" and row["error"] is None and row["seconds"] > 0
        assert "peak_memory_bytes" in row and row["peak_memory_bytes"] is None  # CPU
    page = (tmp_path / "dry-run.md").read_text()
    assert page.count("| ok |") == len(rows) and "dry run" in page


def test_any_error_fails_the_check_loudly_and_the_rest_still_runs(tmp_path, monkeypatch, capsys):
    """An injected error in one stage: the check reports it with its traceback, runs the
    other stages, writes the report and exits non-zero."""

    def broken():
        raise RuntimeError("injected failure")

    def stages(profile, arch, part, device, dry_run):
        return [("broken", broken), ("fine", lambda: None)]

    monkeypatch.setattr(gpu_check, "cell_stages", stages)
    monkeypatch.setattr(gpu_check, "density_stage", lambda *args: lambda: None)
    assert main(["gpu-check", "--dry-run", "--out", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "dry-run.json").read_text())
    failed = [row for row in report["stages"] if row["status"] == "failed"]
    assert {row["stage"] for row in failed} == {"broken"} and len(failed) == 2  # both parts
    assert all("RuntimeError: injected failure" in row["error"] for row in failed)
    assert {row["stage"] for row in report["stages"]} == {"setup", "broken", "fine", "training"}
    assert "FAILED smoke vgg16 broken" in capsys.readouterr().err
    assert "| failed |" in (tmp_path / "dry-run.md").read_text()


def test_a_spent_budget_fails_the_stages_it_did_not_start(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "density_stage", lambda *args: lambda: None)
    assert main(["gpu-check", "--dry-run", "--budget", "0", "--out", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "dry-run.json").read_text())
    assert report["failed"] == len(report["stages"]) > 0
    assert all("not started" in row["error"] for row in report["stages"])


def test_a_peak_that_would_not_fit_beside_the_other_cells_is_a_failure():
    """Three cells share a GPU: a stage whose peak exceeds a third of its memory would
    run out of memory in the grid even though it passed here alone."""
    row = {"peak_memory_bytes": 30 * gpu_check.GIB}
    assert gpu_check._too_big(row, cells=3, total=80 * gpu_check.GIB)
    assert gpu_check._too_big(row, cells=2, total=80 * gpu_check.GIB) is None
    assert gpu_check._too_big({"peak_memory_bytes": None}, cells=3, total=None) is None
