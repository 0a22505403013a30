"""The Performance page's data: benchmark reports and how long each profile's grids took."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from paperlib.core.cost import BF16_PEAK
from paperlib.core.registry import EXPERIMENTS
from paperlib.report.common import grid_results
from paperlib.run.plan import cells_at_once, plan
from paperlib.run.profiles import load_profile
from paperlib.run.rates import PlanError


def hardware_table(reports: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "report": name,
                "device": r["device"],
                "torch": r["packages"].get("torch", "?"),
                "quick": r.get("quick", False),
            }
            for name, r in reports.items()
        ]
    ).set_index("report")


def section_table(reports: dict[str, dict], section: str) -> pd.DataFrame:
    """One benchmark section (``training``, ``deepfool``, ``utilisation``, ...) across the
    reports that measured it."""
    rows = []
    for name, report in reports.items():
        if section not in report:
            continue
        entries = report[section] if isinstance(report[section], list) else [report[section]]
        rows += [{"report": name, **entry} for entry in entries]
    return pd.DataFrame(rows)


def utilisation_table(reports: dict[str, dict], section: str) -> pd.DataFrame:
    """The ``utilisation`` or ``attacks`` section: median rate with its spread over the
    repeats, achieved TFLOP/s and the share of the device's bf16 peak."""
    table = section_table(reports, section)
    if table.empty:
        return table
    keys = ["report", "arch", "method" if section == "attacks" else "batch_size", "precision"]
    table["per s (min-max)"] = [
        f"{rate:,.0f} ({low:,.0f}-{high:,.0f})"
        for rate, (low, high) in zip(table["per_s"], table["per_s_spread"], strict=True)
    ]
    if "utilisation" not in table:
        table["utilisation"] = float("nan")
    table["% of bf16 peak"] = (100 * table["utilisation"]).round(1)
    return table.set_index(keys)[["per s (min-max)", "tflop_per_s", "% of bf16 peak"]].round(1)


def load_recipe_probes(folder: Path) -> pd.DataFrame:
    """``python -m benchmarks.recipe`` runs: accuracy after a given number of epochs."""
    rows = []
    for path in sorted(folder.glob("*.json")):
        report = json.loads(path.read_text())
        for run in report["runs"]:
            rows.append(
                {
                    "profile": report["profile"],
                    "device": report["device"],
                    "arch": run["arch"],
                    "batch size": run["batch_size"],
                    "peak lr": run["lr"],
                    "epochs": run["epochs"],
                    "seconds": round(run["seconds"], 1),
                    "test accuracy": run["test_accuracy"],
                    "best validation": max(run["val_accuracy_by_epoch"]),
                }
            )
    return pd.DataFrame(rows)


def training_figure(table: pd.DataFrame) -> plt.Figure:
    """Training throughput, ours against the DataLoader baseline, per report and model."""
    labels = [f"{r.report}\n{r.arch}" for r in table.itertuples()]
    x = range(len(table))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(table)), 3.2))
    ax.bar([i - 0.2 for i in x], table["baseline_img_per_s"], 0.4, label="DataLoader + transforms")
    ax.bar([i + 0.2 for i in x], table["ours_img_per_s"], 0.4, label="ours (on-device)")
    for i, speedup in zip(x, table["speedup"], strict=True):
        top = max(table["ours_img_per_s"].iloc[i], table["baseline_img_per_s"].iloc[i])
        ax.annotate(f"{speedup:.2f}x", (i, top), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("training images / s")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def stage_table(profiles: list[str]) -> pd.DataFrame:
    """Cell time per experiment for each profile with results, against its budget.

    "cell seconds" sums the cells' wall times: the time one worker would take. The grid
    runs "at once" cells at a time on the device the results record (``cells_at_once``:
    the profile's workers per GPU on one GPU, its CPU workers on a CPU), so the summed
    time over that is an estimate of the grid's wall time, which is what the budget
    bounds. The estimate leaves out each kernel's start-up and the book build.

    "cpu seconds" sums the processor time of the cells that record it ("cpu timed"
    of them: results made before it was recorded lack it). Unlike the wall time, it
    leaves out other work that shared the cores and time a run spent stopped, so it
    is what a long run that paused or shared the machine actually cost.
    """
    rows = []
    for profile in profiles:
        for experiment in EXPERIMENTS:
            results, missing = grid_results(profile, experiment)
            if not results:
                continue
            seconds = sum(r.provenance.wall_seconds for r in results)
            # Results written before processor time was recorded have none.
            cpu = [t for t in (r.provenance.cpu_seconds for r in results) if t is not None]
            device = results[0].provenance.device
            at_once = cells_at_once(profile, on_gpu=not device.startswith("CPU"))
            rows.append(
                {
                    "profile": profile,
                    "experiment": experiment,
                    "cells": len(results),
                    "missing": len(missing),
                    "cell seconds": seconds,
                    "at once": at_once,
                    "≈ wall (s)": seconds / at_once,
                    "cpu seconds": sum(cpu),
                    "cpu timed": len(cpu),
                    "device": device,
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    totals = table.groupby("profile", sort=False)["≈ wall (s)"].sum()
    table["profile ≈ wall (s)"] = table["profile"].map(totals)
    table["budget (s)"] = table["profile"].map(_budget_seconds)
    return table


def _budget_seconds(profile: str) -> float | None:
    """The profile's ``grid.budget_minutes``, in seconds (None without one)."""
    minutes = load_profile(profile).grid.budget_minutes
    return None if minutes is None else 60 * minutes


def plan_vs_measured(planned_for: dict[str, str | None], reports: dict) -> pd.DataFrame:
    """Each profile's plan (``paperlib.run.plan``, at the rates in ``reports``) beside the
    time its grids took, per experiment. A profile with results is planned for the device
    they record; one without, for the device ``planned_for`` names (None: this machine).
    Measured time is ``stage_table``'s estimate of the grid's wall time, and beside it
    the processor time of the cells that record it; "–" where the profile has no
    results."""
    measured = stage_table(list(planned_for))
    rows = []
    for profile, default in planned_for.items():
        done = measured[measured["profile"] == profile] if not measured.empty else measured
        device = done["device"].iloc[0] if len(done) else None
        gpu = next((key for key in BF16_PEAK if device and key in device.lower()), None)
        gpu = gpu if len(done) else default
        try:
            planned = plan(profile, gpu, reports).groupby("experiment")["seconds"].sum()
        except PlanError:
            continue
        for experiment, seconds in planned.items():
            row = done[done["experiment"] == experiment] if len(done) else done
            rows.append(
                {
                    "profile": profile,
                    "experiment": experiment,
                    "planned on": gpu.upper() if gpu else "the CPU of make bench",
                    "plan (min)": round(seconds / 60, 1),
                    "cells run": int(row["cells"].iloc[0]) if len(row) else 0,
                    "cells missing": int(row["missing"].iloc[0]) if len(row) else "–",
                    "measured (min)": round(row["≈ wall (s)"].iloc[0] / 60, 1) if len(row) else "–",
                    "measured cpu (h)": round(row["cpu seconds"].iloc[0] / 3600, 2)
                    if len(row) and row["cpu timed"].iloc[0]
                    else "–",
                    "cpu timed": int(row["cpu timed"].iloc[0]) if len(row) else "–",
                    "measured on": row["device"].iloc[0] if len(row) else "–",
                }
            )
    return pd.DataFrame(rows)
