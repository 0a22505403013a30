"""The grid runner: skip-if-done, and the smoke grid end to end into an HTML book."""

import asyncio
import datetime as dt
import json
import os
import re

import nbformat
import pytest
from helpers import changed, mark_done

from paperlib.core.registry import ATTACKS
from paperlib.report.book import (
    REPRESENTATIVE,
    _copy_all_runs,
    _runs_page,
    representative_cell,
)
from paperlib.report.judge import LABELS, NOT_TESTABLE
from paperlib.run.cells import CellOutcome
from paperlib.run.checkpoints import checkpoint_path
from paperlib.run.grid import run_grid
from paperlib.run.kernels import _IPCKernelManager
from paperlib.run.profiles import available_profiles, cell_hash, load_grid, load_profile
from paperlib.run.results import load_results, result_json, unpaired_attributions, write_result
from paperlib.run.splits import data_identity
from paperlib.run.store import result_path, run_path, write_json


def test_finished_cells_are_skipped_without_running_anything(smoke_env):
    cells = mark_done("smoke", "density")
    outcomes = run_grid("smoke", "density", progress=False)
    assert [o.status for o in outcomes] == ["skipped"] * len(cells)


def test_a_result_with_a_stale_hash_is_not_skipped(smoke_env, monkeypatch):
    cells = load_grid("density", "smoke")
    for result in mark_done("smoke", "density"):
        stale = {**result_json(result), "config_hash": "stale"}  # by an older grid
        write_json(result_path("smoke", "density", result.cell), stale)
    ran = []

    def record(profile, experiment, cell_id, parameters, expected):
        """Stands in for the papermill run: records which cells would run."""
        ran.append(cell_id)
        return CellOutcome(cell_id, "ran", run_path(profile, experiment, cell_id))

    monkeypatch.setattr("paperlib.run.workers.run_cell", record)
    # One worker: the stand-in lives in this process (worker processes would not see it).
    outcomes = run_grid("smoke", "density", workers=1, progress=False)
    assert ran == [c.cell_id for c in cells]
    assert [o.status for o in outcomes] == ["ran"] * len(cells)


def test_an_attribution_of_another_model_than_the_attacked_one_is_redone_from_its_checkpoint(
    smoke_env, monkeypatch
):
    """Experiment 3 explains experiment 2's models cell for cell. An attribution result
    whose model predicts otherwise than the one its adversarial cell attacked (trained
    again where the checkpoint was missing, on a machine with other vector instructions)
    is redone once the attacked model's checkpoint is here and newer than that result:
    the rerun reuses it. Without such a checkpoint a rerun would train again, so the
    cell is left, and the attribution page names it (``unpaired_attributions``)."""
    attacked = mark_done("smoke", "adversarial")
    moved = mark_done("smoke", "attribution")[0]
    write_result(changed(moved, "metrics.predicted_counts", [11] + [10] * 8 + [9]))
    assert unpaired_attributions(
        load_results("smoke", "attribution"), load_results("smoke", "adversarial")
    ) == [moved.cell]
    ran = []

    def record(experiment, cell_id, parameters, expected_hash, final, result):
        """Stands in for the notebook's execution, past the cell's own check."""
        ran.append(cell_id)
        return CellOutcome(cell_id, "ran", final)

    monkeypatch.setattr("paperlib.run.cells._execute_claimed", record)
    run_grid("smoke", "attribution", workers=1, progress=False)
    assert ran == []  # no checkpoint: a rerun would train again
    checkpoint = checkpoint_path("smoke", attacked[0].model_key)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    made = dt.datetime.fromisoformat(moved.provenance.started_at).timestamp()
    os.utime(checkpoint, (made - 60, made - 60))  # the checkpoint the result was made from
    run_grid("smoke", "attribution", workers=1, progress=False)
    assert ran == []
    os.utime(checkpoint, (made + 60, made + 60))  # written after it: the attacked model
    run_grid("smoke", "attribution", workers=1, progress=False)
    assert ran == [moved.cell]


def test_stale_temporaries_are_removed_before_the_grid_runs(smoke_env):
    folder = result_path("smoke", "density", "x").parent
    stale = folder / ".lambda-0.json.abc.tmp"
    mark_done("smoke", "density")
    stale.write_text("{")
    run_grid("smoke", "density", progress=False)
    assert not stale.exists()


@pytest.mark.slow
def test_smoke_grids_complete_with_sound_results(smoke_book, monkeypatch):
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(smoke_book.output))
    for experiment, outcomes in smoke_book.outcomes.items():
        assert {o.status for o in outcomes} == {"ran"}, (experiment, [o.error for o in outcomes])
    results = load_results("smoke", "density")
    assert sorted(r.params.activity_l1 for r in results) == [0, 0, 1e-4, 1e-4]
    assert {r.params.seed for r in results} == {0, 1}
    smoke = load_profile("smoke")
    for r in results:
        cell = next(c for c in load_grid("density", "smoke") if c.cell_id == r.cell)
        assert r.config_hash == cell_hash(smoke, "density", cell, data_identity(smoke))
        executed = json.loads(run_path("smoke", "density", r.cell).read_text())
        # committed runs name no folder of the machine that ran them
        paths = executed["metadata"]["papermill"]
        assert paths["input_path"] == "notebooks/density.ipynb"
        assert not paths["output_path"].startswith("/"), paths["output_path"]
    # The strongest penalty gives the sparsest code, for each seed: density responds to lambda.
    density = {(r.params.activity_l1, r.params.seed): r.metrics.average_density for r in results}
    assert all(density[1e-4, seed] < density[0, seed] for seed in (0, 1))

    adversarial = load_results("smoke", "adversarial")
    cells = load_grid("adversarial", "smoke")
    assert len(adversarial) == len(cells) == 12
    for r in adversarial:
        metrics = r.metrics
        assert set(metrics.defended) == set(ATTACKS)
        for report in (*metrics.undefended.values(), *metrics.defended.values()):
            assert 0 <= report.accuracy <= 1
        # FGSM and PGD stay inside their L-inf ball (the smoke profile's eps is 0.3).
        assert metrics.undefended["fgsm"].linf <= 0.3 + 1e-6
        assert metrics.undefended["pgd"].linf <= 0.3 + 1e-6
        # Both readings of the protocol, for every attack, and DeepFool's rho.
        assert set(r.correct["transfer"]) == set(r.correct["defended"])
        deepfool = metrics.undefended["deepfool"]
        assert deepfool.rho is None if deepfool.fooled == 0 else deepfool.rho > 0
        assert 0 <= metrics.sparsity.activation_density <= 1
    # Every clean model was checkpointed once, and experiment 3 reused them all.
    assert len(list((smoke_book.output / "checkpoints" / "smoke").glob("*.pt"))) == len(cells)
    explained = load_results("smoke", "attribution")
    assert len(explained) == len(cells) and all(r.checkpoint_reused for r in explained)
    assert {r.model_key for r in explained} == {r.model_key for r in adversarial}
    # The DeepFool check attacks as many images as its cell id says.
    (check,) = load_results("smoke", "deepfool_check")
    (cell,) = load_grid("deepfool_check", "smoke")
    assert check.metrics.images == cell.n_images
    rows = check.metrics.implementations
    assert [row["implementation"] for row in rows] == ["paperlib (batched)", "torchattacks"]

    # The executed cells print no warnings: a reader would take each for a problem.
    warned = [
        (path.name, line)
        for path in (smoke_book.output / "runs" / "smoke").glob("*/*.ipynb")
        for cell in nbformat.read(path, as_version=4).cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr"
        for line in output["text"].splitlines()
        if "Warning" in line
    ]
    assert not warned, warned

    # A rerun does nothing.
    assert {o.status for o in run_grid("smoke", "density", progress=False)} == {"skipped"}


@pytest.mark.slow
def test_the_smoke_book_builds_without_warnings(smoke_book):
    build = smoke_book.build
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "warning" not in build.stderr.lower(), build.stderr[-3000:]
    html = smoke_book.html
    assert (html / "index.html").exists()
    generated = html / "book" / "generated"
    results_page = (generated / "density_results.html").read_text()
    assert "<img" in results_page
    # One of the five verdicts a testable claim can get, beside its primary strength.
    decided = "|".join(label for label in LABELS if label != NOT_TESTABLE)
    assert re.search(rf"<td>primary</td>\s*<td>({decided})</td>", results_page)
    assert (generated / "runs" / "density-lambda-0.0-s0.html").exists()
    assert "did not run" not in (generated / "adversarial_cell.html").read_text()
    table1_page = (generated / "adversarial_results.html").read_text()
    assert "Table 1" in table1_page and "<img" in table1_page
    assert (generated / "deepfool_check.html").exists()
    table2_page = (generated / "attribution_results.html").read_text()
    assert "Table 2" in table2_page and "<img" in table2_page
    summary = (generated / "summary.html").read_text()
    assert len(re.findall(rf"<td>({decided})</td>", summary)) >= 9


def test_kernels_are_not_interrupted_while_shutting_down():
    """An idle kernel gets no SIGINT at shutdown (it would log a spurious error); any
    other interrupt still goes through."""
    manager = _IPCKernelManager()
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())  # skipped: no kernel needed
    manager.shutting_down = False
    with pytest.raises(RuntimeError, match="No kernel is running"):
        asyncio.run(manager._async_interrupt_kernel())


@pytest.mark.parametrize("profile", available_profiles())
def test_each_chapters_walk_through_cell_is_in_every_profiles_grid(profile):
    """The book opens each chapter with one executed cell; if a grid renames or drops
    it, the chapter would open on a "did not run" page."""
    for experiment in REPRESENTATIVE:
        cell = representative_cell(profile, experiment)
        assert cell in {c.cell_id for c in load_grid(experiment, profile)}, (experiment, cell)
    if profile in ("smoke", "cpu"):  # the miniatures open on the same, weaker-penalty cells
        assert all(representative_cell(profile, e) == cell for e, cell in REPRESENTATIVE.items())


def test_the_runs_appendix_shows_done_failed_and_missing_cells(smoke_env, tmp_path):
    """A cell that failed keeps its executed notebook, under a title that says so; a cell
    that never ran is listed without a page."""
    done, failed, *missing = [c.cell_id for c in load_grid("density", "smoke")]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Density\ntext")])
    for cell, suffix in ((done, ".ipynb"), (failed, ".failed.ipynb")):
        path = run_path("smoke", "density", cell).with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
    generated = tmp_path / "generated"
    (generated / "runs").mkdir(parents=True)

    rows = {r["cell"]: r for r in _copy_all_runs("smoke", "density", generated)}

    assert [rows[c]["status"] for c in (done, failed, *missing)] == (
        ["done", "failed"] + ["missing"] * len(missing)
    )
    titles = {
        c: nbformat.read(generated / "runs" / f"density-{c}.ipynb", 4).cells[0].source
        for c in (done, failed)
    }
    assert titles[done].startswith(f"# Run: density, {done} (smoke)\ntext")
    assert titles[failed].startswith(f"# Failed run: density, {failed} (smoke)")
    assert sorted(p.stem for p in (generated / "runs").iterdir()) == sorted(
        f"density-{c}" for c in (done, failed)
    )
    page = _runs_page("smoke", list(rows.values()))
    assert f"{{doc}}`{failed} <runs/density-{failed}>` | failed" in page
    assert f"| density | {missing[0]} | missing | – |" in page
