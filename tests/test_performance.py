"""The benchmarks script and the Performance page's tables.

Speed itself is never asserted here: the benchmark prints ratios measured in one run.
These tests check that its report is complete and self-consistent.
"""

import json
import subprocess
import sys

import pytest
from helpers import make_result

from paperlib.core.registry import ARCHITECTURES
from paperlib.report import performance
from paperlib.report.performance import (
    hardware_table,
    plan_vs_measured,
    section_table,
    stage_table,
    training_figure,
)
from paperlib.run.plan import load_reports
from paperlib.run.profiles import load_grid
from paperlib.run.store import REPO_ROOT


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run.stdout


@pytest.mark.slow
def test_the_quick_benchmark_report_is_complete_and_consistent(quick_report):
    out, printed = quick_report
    report = json.loads((out / "cpu-quick.json").read_text())
    assert report["quick"] is True and "CPU" in report["device"]
    assert report["packages"]["torch"]
    assert [row["arch"] for row in report["training"]] == list(ARCHITECTURES)
    for row in report["training"]:
        assert row["ours_img_per_s"] > 0 and row["baseline_img_per_s"] > 0
    # On an undefended model our DeepFool fools essentially every correctly classified
    # image (torchattacks' stops short on some at the same iteration cap).
    deepfool = report["deepfool"]
    assert deepfool["ours_success"] >= 0.95 and 0 < deepfool["torchattacks_success"] <= 1
    assert report["occlusion"]["ours_s"] > 0 and report["occlusion"]["captum_per_image_s"] > 0
    assert {row["arch"] for row in report["utilisation"]} >= set(ARCHITECTURES)
    assert "stages" not in report  # the grids' times are the Performance page's, from results
    assert "speedup" in printed and str(out / "cpu-quick.json") in printed


@pytest.mark.slow
def test_the_performance_tables_read_the_report(quick_report):
    out, _ = quick_report
    reports = load_reports(out)
    assert list(reports) == ["cpu-quick"]
    assert hardware_table(reports).loc["cpu-quick", "quick"]
    training = section_table(reports, "training")
    assert len(training) == len(ARCHITECTURES) and set(training["report"]) == {"cpu-quick"}
    fig = training_figure(training)
    assert len(fig.axes[0].patches) == 2 * len(ARCHITECTURES)  # ours and baseline per model
    assert len(section_table(reports, "deepfool")) == 1


def test_no_reports_means_empty_tables(tmp_path):
    assert load_reports(tmp_path) == {}


@pytest.mark.slow
def test_stage_table_sums_cell_times_per_experiment(smoke_book, monkeypatch):
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(smoke_book.output))
    table = stage_table(["smoke", "cpu"]).set_index("experiment")
    assert set(table["profile"]) == {"smoke"}  # no cpu results in the smoke output
    for experiment in ("density", "adversarial"):
        assert table.loc[experiment, "cells"] == len(load_grid(experiment, "smoke"))
    assert (table["cell seconds"] > 0).all() and (table["missing"] == 0).all()
    assert (table["cpu timed"] == table["cells"]).all() and (table["cpu seconds"] > 0).all()
    # The smoke grid runs two cells at once: its wall time is about half the cell time,
    # and that is what the budget is set against.
    assert (table["at once"] == 2).all()
    assert table["≈ wall (s)"].tolist() == pytest.approx((table["cell seconds"] / 2).tolist())
    assert table["profile ≈ wall (s)"].iloc[0] == pytest.approx(table["≈ wall (s)"].sum())
    assert (table["budget (s)"] == 5 * 60).all()  # params/smoke.yaml's grid.budget_minutes


def _density_result(**provenance):
    return make_result("density", {"activity_l1": 0.0, "seed": 0}, {}, provenance=provenance)


def test_stage_table_runs_as_many_cells_at_once_as_the_grid_on_the_recorded_device(
    monkeypatch,
):
    """Results from a GPU ran the profile's workers per GPU at once (paper: three), and
    results from a CPU its CPU workers (smoke: two); the page divided paper's GPU time by
    one, its CPU default, and disagreed with the grid and the plan."""

    def six_cells(profile, experiment):
        device = "NVIDIA H200" if profile == "paper" else "CPU (x86_64, 2 threads)"
        results = [_density_result(device=device, wall_seconds=30.0)] * 6
        return (results, []) if experiment == "density" else ([], [])

    monkeypatch.setattr(performance, "grid_results", six_cells)
    table = stage_table(["paper", "smoke"]).set_index("profile")
    assert table.loc["paper", "at once"] == 3 and table.loc["smoke", "at once"] == 2
    assert table.loc["paper", "≈ wall (s)"] == pytest.approx(6 * 30.0 / 3)
    assert table.loc["smoke", "≈ wall (s)"] == pytest.approx(6 * 30.0 / 2)


def test_stage_table_sums_processor_time_over_the_cells_that_record_it(monkeypatch):
    """A study that paused or shared its cores is priced by its cells' processor time;
    cells made before it was recorded are counted apart, not as zero."""
    device = "CPU (x86_64, 1 threads)"
    timed = _density_result(device=device, wall_seconds=90.0, cpu_seconds=40.0)
    untimed = _density_result(device=device, wall_seconds=30.0, cpu_seconds=None)
    results = [timed] * 3 + [untimed] * 2
    monkeypatch.setattr(
        performance,
        "grid_results",
        lambda profile, experiment: (results, []) if experiment == "density" else ([], []),
    )
    row = stage_table(["smoke"]).iloc[0]
    assert row["cell seconds"] == pytest.approx(3 * 90.0 + 2 * 30.0)
    assert row["cpu seconds"] == pytest.approx(3 * 40.0) and row["cpu timed"] == 3


def test_the_plan_stands_beside_the_measured_wall_and_processor_time(monkeypatch):
    """Each experiment's plan beside what its cells took: the wall-time estimate and the
    processor time of the cells that record it; "–" where no cell records it."""
    device = "CPU (x86_64, 1 threads)"
    timed = _density_result(device=device, wall_seconds=90.0, cpu_seconds=1800.0)
    untimed = _density_result(device=device, wall_seconds=30.0, cpu_seconds=None)
    monkeypatch.setattr(
        performance,
        "grid_results",
        lambda profile, experiment: {
            ("smoke", "density"): ([timed] * 3 + [untimed], []),
            ("cpu", "density"): ([untimed], []),
        }.get((profile, experiment), ([], [])),
    )
    reports = load_reports(REPO_ROOT / "benchmarks" / "results")
    table = plan_vs_measured({"smoke": None, "cpu": None}, reports)
    table = table.set_index(["profile", "experiment"])
    density = table.loc[("smoke", "density")]
    assert density["measured cpu (h)"] == pytest.approx(3 * 1800 / 3600)
    assert density["cpu timed"] == 3 and density["cells run"] == 4
    assert density["measured (min)"] == pytest.approx(round((3 * 90 + 30) / 2 / 60, 1))
    assert table.loc[("cpu", "density"), "measured cpu (h)"] == "–"  # none timed
    assert table.loc[("cpu", "density"), "cpu timed"] == 0
    assert table.loc[("smoke", "adversarial"), "cpu timed"] == "–"
