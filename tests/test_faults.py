"""Faults and bad input: a killed grid resumes, a failing cell is contained, corrupt
artifacts are recomputed, bad parameters fail early and clearly, runs repeat exactly,
and nothing unsafe is loaded or written."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from helpers import mark_done

from paperlib.__main__ import main
from paperlib.core.settings import ConfigError
from paperlib.run.grid import run_grid
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.results import load_results
from paperlib.run.store import (
    NOTEBOOKS_DIR,
    REPO_ROOT,
    result_path,
    run_path,
)

SOURCES = [
    *(REPO_ROOT / "paperlib").rglob("*.py"),
    *(REPO_ROOT / "notebooks").glob("*.py"),
    *(REPO_ROOT / "benchmarks").glob("*.py"),
]


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.is_file()]


# --- kill and resume ------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_grid_resumes_without_redoing_finished_cells(smoke_env):
    command = [
        sys.executable,
        "-m",
        "paperlib",
        "grid",
        "--profile",
        "smoke",
        "--experiment",
        "density",
    ]
    grid = subprocess.Popen(
        command,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = smoke_env / "results" / "smoke" / "density"
    deadline = time.monotonic() + 300
    while not list(results.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # into the next cell
    os.killpg(grid.pid, signal.SIGKILL)  # the runner and its kernel, mid-cell
    grid.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    cells = load_grid("density", "smoke")
    assert 1 <= len(finished) < len(cells), "kill the grid while it is in the middle"

    outcomes = run_grid("smoke", "density", progress=False)
    assert [o.status for o in outcomes].count("skipped") == len(finished)
    assert {o.status for o in outcomes} <= {"ran", "skipped"}
    # Finished cells were not redone; every artifact is whole; no temporaries remain.
    assert {p: results.joinpath(p).stat().st_mtime_ns for p in finished} == finished
    assert len(load_results("smoke", "density")) == len(cells)
    for notebook in (smoke_env / "runs" / "smoke" / "density").glob("*.ipynb"):
        nbformat.validate(nbformat.read(notebook, as_version=4))
    assert _leftovers(smoke_env / "results") == []
    assert _leftovers(smoke_env / "runs") == []


# --- one failing cell -----------------------------------------------------------------


@pytest.mark.slow
def test_one_failing_cell_is_recorded_and_the_others_complete(smoke_env, monkeypatch, capsys):
    bad = "lambda-0.0001-s0"
    mark_done("smoke", "density", skip={bad, "lambda-0.0001-s1"})
    outcomes = run_grid(
        "smoke", "density", progress=False, extra_parameters={bad: {"activity_l1": "not-a-number"}}
    )
    status = {o.cell: o.status for o in outcomes}
    assert status[bad] == "failed" and status["lambda-0.0001-s1"] == "ran"
    failure = json.loads(run_path("smoke", "density", bad).with_suffix(".failed.json").read_text())
    assert "activity_l1" in failure["error"]
    traceback = Path(failure["traceback"])
    assert traceback.exists() and "ConfigError" in traceback.read_text()
    assert not result_path("smoke", "density", bad).exists()

    # The command line reports these outcomes and exits non-zero.
    monkeypatch.setattr("paperlib.run.grid.run_grid", lambda *a, **k: outcomes)
    assert main(["grid", "--profile", "smoke", "--experiment", "density"]) == 1
    printed = capsys.readouterr().out
    assert f"FAILED {bad}" in printed and f"traceback: {traceback}" in printed


@pytest.mark.slow
def test_the_results_page_marks_a_missing_cell(smoke_env, tmp_path):
    mark_done(
        "smoke",
        "density",
        skip={"lambda-0.0001-s1"},
        average_density=0.4,
        average_density_ci=[0.39, 0.41],
        train_accuracy=0.6,
        val_accuracy=0.5,
        test_accuracy=0.5,
        test_accuracy_ci=[0.4, 0.6],
        predicted_counts=[10] * 10,
    )
    out = tmp_path / "page.ipynb"
    pm.execute_notebook(
        NOTEBOOKS_DIR / "density_results.ipynb",
        out,
        kernel_name="python3",
        parameters={"profile": "smoke"},
        progress_bar=False,
    )
    assert "Missing cells" in out.read_text() and "lambda-0.0001-s1" in out.read_text()


# --- corrupt artifacts ----------------------------------------------------------------


@pytest.mark.slow
def test_a_truncated_result_is_reported_and_recomputed(smoke_env):
    mark_done("smoke", "density")
    path = result_path("smoke", "density", "lambda-0.0001-s0")
    path.write_text(path.read_text()[:20])
    with pytest.warns(UserWarning, match="corrupt file"):
        outcomes = run_grid("smoke", "density", progress=False)
    assert {o.cell: o.status for o in outcomes}["lambda-0.0001-s0"] == "ran"
    assert json.loads(path.read_text())["metrics"]["test_accuracy"] >= 0


# Truncated and mismatched checkpoints: tests/test_checkpoints.py.


# --- bad parameters -------------------------------------------------------------------


def test_unknown_profile_and_experiment_fail_before_any_compute(smoke_env):
    with pytest.raises(ConfigError, match=r"unknown profile 'smok' \(did you mean 'smoke'\?\)"):
        run_grid("smok", "density", progress=False)
    with pytest.raises(ConfigError, match=r"unknown experiment 'densty'"):
        run_grid("smoke", "densty", progress=False)
    assert not (smoke_env / "runs").exists()


def test_grid_cli_reports_a_bad_profile_and_exits_2(smoke_env):
    cli = subprocess.run(
        [sys.executable, "-m", "paperlib", "grid", "--profile", "nope"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert cli.returncode == 2 and "unknown profile 'nope'" in cli.stderr


def test_grid_cli_reports_a_missing_data_copy_before_any_cell_runs(smoke_env, tmp_path):
    missing = tmp_path / "no-such-cifar"
    cli = subprocess.run(
        [sys.executable, "-m", "paperlib", "grid", "--profile", "cpu", "--data", str(missing)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert cli.returncode == 2
    assert f"no such file or directory: {missing}" in cli.stderr and "--data PATH" in cli.stderr
    assert not (smoke_env / "runs").exists() and not (smoke_env / "results" / "cpu").exists()


@pytest.mark.slow
def test_a_bad_papermill_value_names_the_parameter(smoke_env, tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match=r"activity_l1: expected float"):
        pm.execute_notebook(
            NOTEBOOKS_DIR / "density.ipynb",
            tmp_path / "out.ipynb",
            parameters={"profile": "smoke", "activity_l1": "lots"},
            kernel_name="python3",
            progress_bar=False,
        )
    assert not (smoke_env / "results").exists()  # it failed before any compute


# Bad data (missing path, wrong layout, class count, corrupt image, not an archive,
# half-written cache): tests/test_data.py.


# --- determinism ----------------------------------------------------------------------


def _without_provenance(path: Path) -> dict:
    result = json.loads(path.read_text())
    result.pop("provenance")
    return result


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "params", "cell"),
    [
        ("density", {"activity_l1": 1e-4, "seed": 1}, "lambda-0.0001-s1"),
        (
            "adversarial",
            {"arch": "vgg16", "regularizer": "l1", "penalty": 0.01, "seed": 0},
            "vgg16-l1-c0.01-s0",
        ),
    ],
)
def test_two_runs_with_the_same_seed_give_identical_results(
    smoke_book, tmp_path, monkeypatch, experiment, params, cell
):
    """A fresh papermill run of one cell, against the session's smoke run of it."""
    out = tmp_path / "again"
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(out))
    monkeypatch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", str(smoke_book.threads))  # the kernel inherits it
    pm.execute_notebook(
        NOTEBOOKS_DIR / f"{experiment}.ipynb",
        tmp_path / "again.ipynb",
        parameters={"profile": "smoke", **params},
        kernel_name="python3",
        progress_bar=False,
    )
    relative = Path("results") / "smoke" / experiment / f"{cell}.json"
    assert _without_provenance(out / relative) == _without_provenance(smoke_book.output / relative)


# --- safety ---------------------------------------------------------------------------


def _code() -> dict[Path, str]:
    return {p: p.read_text() for p in SOURCES}


def test_every_torch_load_uses_weights_only():
    for path, text in _code().items():
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"


def test_yaml_is_only_safe_loaded_and_nothing_is_evaluated():
    for path, text in _code().items():
        assert not re.search(r"yaml\.(load|unsafe_load|full_load)\(", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path
        assert "pickle.loads" not in text or path.name == "data.py", path


class _Tampered:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_tampered_official_batch_is_refused_without_running_code(tmp_path, capsys):
    import pickle

    from paperlib.core.data import DataError, load_cifar10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        (folder / name).write_bytes(pickle.dumps({b"data": _Tampered(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_cifar10(folder, root=tmp_path, cache_dir=tmp_path / "cache")
    assert "must never run" not in capsys.readouterr().out


# --- parallel workers -----------------------------------------------------------------


@pytest.mark.slow
def test_smoke_cells_ran_two_at_once_on_a_share_of_the_cores(smoke_book, monkeypatch):
    """The profile's grid.workers applies when no --workers is given, and each worker's
    kernels get an equal share of the cores instead of a thread per core each. (A job of
    one cell, such as the DeepFool check, runs alone on every core.)"""
    assert load_profile("smoke").grid.workers == 2
    assert smoke_book.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(smoke_book.output))
    for experiment in (e for e, cells in smoke_book.outcomes.items() if len(cells) > 1):
        threads = {r.provenance.threads for r in load_results("smoke", experiment)}
        assert threads == {smoke_book.threads}, experiment


@pytest.mark.slow
def test_one_worker_gives_the_same_results_as_two(smoke_book, tmp_path, monkeypatch):
    """One worker with the same thread count, against the session's two-worker smoke run."""
    monkeypatch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", str(smoke_book.threads))

    def results(output):
        monkeypatch.setenv("PAPERLIB_OUTPUT", str(output))
        return {
            r.cell: dataclasses.replace(r, provenance=None)
            for r in load_results("smoke", "density")
            if r.cell in cells
        }

    # Two cells, one after the other, against the same two from the two-worker run.
    cells = [c.cell_id for c in load_grid("density", "smoke")][-2:]
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(tmp_path))
    outcomes = run_grid("smoke", "density", workers=1, only=cells, progress=False)
    assert [(o.cell, o.status) for o in outcomes] == [(c, "ran") for c in cells]
    ran_before = {o.cell: o.status for o in smoke_book.outcomes["density"]}
    assert [ran_before[c] for c in cells] == ["ran", "ran"]
    assert results(tmp_path) == results(smoke_book.output) and len(results(tmp_path)) == 2


def test_workers_must_be_positive():
    cli = subprocess.run(
        [sys.executable, "-m", "paperlib", "grid", "--workers", "0"], capture_output=True, text=True
    )
    assert cli.returncode == 2 and "--workers must be at least 1" in cli.stderr
