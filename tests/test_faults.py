"""Faults and bad input: a killed grid resumes, a failing cell is contained, corrupt
artifacts are recomputed, bad parameters fail early and clearly, runs repeat exactly,
and nothing unsafe is loaded or written."""

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
import torch

from paperlib.core.attacks import make_attack
from paperlib.core.settings import ConfigError, make_cell
from paperlib.run.grid import run_grid
from paperlib.run.profiles import cell_hash, load_grid, load_profile
from paperlib.run.splits import data_identity
from paperlib.run.store import (
    NOTEBOOKS_DIR,
    REPO_ROOT,
    load_results,
    result_path,
    run_path,
    write_json,
)

SOURCES = [
    *(REPO_ROOT / "paperlib").glob("*.py"),
    *(REPO_ROOT / "notebooks").glob("*.py"),
    *(REPO_ROOT / "benchmarks").glob("*.py"),
]


def _mark_done(profile_name: str, experiment: str, skip: set[str] = frozenset()) -> None:
    """Write results with matching hashes for every cell not in ``skip``."""
    profile = load_profile(profile_name)
    for cell in load_grid(experiment, profile_name):
        if cell.cell_id not in skip:
            expected = cell_hash(profile, experiment, cell, data_identity(profile))
            write_json(
                result_path(profile_name, experiment, cell.cell_id),
                {"cell": cell.cell_id, "config_hash": expected},
            )


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
def test_one_failing_cell_is_recorded_and_the_others_complete(smoke_env):
    bad = "lambda-1e-05-s0"
    _mark_done("smoke", "density", skip={bad, "lambda-1e-05-s1"})
    outcomes = run_grid(
        "smoke", "density", progress=False, extra_parameters={bad: {"activity_l1": "not-a-number"}}
    )
    status = {o.cell: o.status for o in outcomes}
    assert status[bad] == "failed" and status["lambda-1e-05-s1"] == "ran"
    failure = json.loads(run_path("smoke", "density", bad).with_suffix(".failed.json").read_text())
    assert "activity_l1" in failure["error"]
    traceback = Path(failure["traceback"])
    assert traceback.exists() and "ConfigError" in traceback.read_text()
    assert not result_path("smoke", "density", bad).exists()

    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys; from paperlib.run.grid import run_grid, summarize;"
                f"o = run_grid('smoke', 'density', progress=False, extra_parameters={{'{bad}':"
                " {'activity_l1': 'x'}}); print(summarize(o)); sys.exit(any(c.status == 'failed' "
                "for c in o))"
            ),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert cli.returncode == 1
    assert f"FAILED {bad}" in cli.stdout and "traceback:" in cli.stdout


@pytest.mark.slow
def test_the_results_page_marks_a_missing_cell(smoke_env, tmp_path):
    _mark_done("smoke", "density", skip={"lambda-1e-05-s1"})
    for r in load_results("smoke", "density"):  # give the fake results real content
        r.update(_fake_density(r["cell"]))
        write_json(result_path("smoke", "density", r["cell"]), r)
    out = tmp_path / "page.ipynb"
    pm.execute_notebook(
        NOTEBOOKS_DIR / "density_results.ipynb",
        out,
        kernel_name="python3",
        parameters={"profile": "smoke"},
        progress_bar=False,
    )
    assert "Missing cells" in out.read_text() and "lambda-1e-05-s1" in out.read_text()


def _fake_density(cell: str) -> dict:
    lam, seed = cell.removeprefix("lambda-").rsplit("-s", 1)
    return {
        "params": {"activity_l1": float(lam), "seed": int(seed)},
        "test_correct": "10" * 50,
        "metrics": {
            "average_density": 0.4,
            "average_density_ci": [0.39, 0.41],
            "train_accuracy": 0.6,
            "test_accuracy": 0.5,
            "test_accuracy_ci": [0.4, 0.6],
        },
        "provenance": {
            "wall_seconds": 1.0,
            "device": "cpu",
            "commit": None,
            "dirty": None,
            "data_source": "synthetic",
            "data_note": "",
        },
    }


# --- corrupt artifacts ----------------------------------------------------------------


@pytest.mark.slow
def test_a_truncated_result_is_reported_and_recomputed(smoke_env):
    _mark_done("smoke", "density")
    path = result_path("smoke", "density", "lambda-1e-05-s0")
    path.write_text(path.read_text()[:20])
    with pytest.warns(UserWarning, match="corrupt result"):
        outcomes = run_grid("smoke", "density", progress=False)
    assert {o.cell: o.status for o in outcomes}["lambda-1e-05-s0"] == "ran"
    assert json.loads(path.read_text())["metrics"]["test_accuracy"] >= 0


# Truncated and mismatched checkpoints: tests/test_checkpoints.py.


# --- bad parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"density.epohcs": 2}, r"unknown key 'density\.epohcs' \(did you mean 'epochs'\?\)"),
        ({"density.epochs": "two"}, r"density\.epochs: expected int, got str"),
        ({"adversarial.attacks.fgsm_eps": -0.1}, r"adversarial\.attacks\.fgsm_eps must be >= 0"),
        ({"adversarial.attacks.pgd_eps": -8 / 255}, r"adversarial\.attacks\.pgd_eps must be >= 0"),
        ({"adversarial.sweep_eps": [0.1, -0.1]}, r"adversarial\.sweep_eps must be >= 0"),
        ({"adversarial.width": {"resnet": 0.5}}, r"unknown 'resnet' \(did you mean 'resnet50'\?\)"),
    ],
)
def test_bad_profile_values_name_the_key_and_file(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_profile("smoke", overrides)
    assert "params/smoke.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"arch": "resnet18"}, r"arch: unknown 'resnet18'.*choose from"),
        ({"regularizer": "l3"}, r"regularizer: unknown 'l3'.*choose from"),
        ({"arch": "../../etc"}, r"arch: unknown"),
        ({"seed": -1}, r"seed must be >= 0"),
    ],
)
def test_bad_cell_parameters_are_rejected(params, message):
    with pytest.raises(ConfigError, match=message):
        make_cell("adversarial", params)


def test_unknown_attack_is_rejected():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(ValueError, match=r"unknown attack 'cw'; choose one of"):
        make_attack("cw", model, load_profile("smoke").adversarial.attacks)


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
        ("density", {"activity_l1": 1e-5, "seed": 1}, "lambda-1e-05-s1"),
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


def test_the_official_batches_are_unpickled_without_arbitrary_objects():
    """CIFAR-10's own format is a pickle; data.py must restrict what it may build."""
    text = (REPO_ROOT / "paperlib" / "data.py").read_text()
    assert "pickle" not in text or "find_class" in text or "Unpickler" in text


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", "x\n", "", "/abs"])
def test_no_parameter_can_write_outside_the_output_folders(smoke_env, bad):
    for make_path in (result_path, run_path):
        with pytest.raises(ValueError, match="unsafe name"):
            make_path("smoke", "density", bad)
        with pytest.raises(ValueError, match="unsafe name"):
            make_path(bad, "density", "lambda-0.0")


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


def test_smoke_cells_ran_two_at_once_on_a_share_of_the_cores(smoke_book, monkeypatch):
    """The profile's grid.workers applies when no --workers is given, and each worker's
    kernels get an equal share of the cores instead of a thread per core each."""
    assert load_profile("smoke").grid.workers == 2
    assert smoke_book.threads == max(1, len(os.sched_getaffinity(0)) // 2)
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(smoke_book.output))
    for experiment in smoke_book.outcomes:
        threads = {r["provenance"]["threads"] for r in load_results("smoke", experiment)}
        assert threads == {smoke_book.threads}, experiment


@pytest.mark.slow
def test_one_worker_gives_the_same_results_as_two(smoke_book, tmp_path, monkeypatch):
    """One worker with the same thread count, against the session's two-worker smoke run."""
    monkeypatch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", str(smoke_book.threads))

    def results(output):
        monkeypatch.setenv("PAPERLIB_OUTPUT", str(output))
        return {
            r["cell"]: {k: v for k, v in r.items() if k != "provenance"}
            for r in load_results("smoke", "density")
        }

    monkeypatch.setenv("PAPERLIB_OUTPUT", str(tmp_path))
    outcomes = run_grid("smoke", "density", workers=1, progress=False)
    cells = [c.cell_id for c in load_grid("density", "smoke")]
    assert [o.status for o in outcomes] == ["ran"] * len(cells)
    assert [o.cell for o in outcomes] == cells
    assert [o.status for o in smoke_book.outcomes["density"]] == ["ran"] * len(cells)
    assert results(tmp_path) == results(smoke_book.output)


def test_workers_must_be_positive():
    cli = subprocess.run(
        [sys.executable, "-m", "paperlib", "grid", "--workers", "0"], capture_output=True, text=True
    )
    assert cli.returncode == 2 and "--workers must be at least 1" in cli.stderr
