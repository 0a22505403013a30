"""What a profile's grid will cost before it runs: FLOPs per stage, and time.

Each stage's work is counted in image passes (a forward pass, or a forward and
backward pass, of one image) from the profile's sizes (``paperlib.run.stages``), and
converted to FLOPs with the per-image counts of ``paperlib.core.cost``. Time is FLOPs
over the rate of the stage's own kind of pass and precision (``paperlib.run.rates``):
training and the searching attacks in bf16, DeepFool, occlusion, Grad-CAM and every
verdict pass in float32. On a GPU two costs that are not arithmetic come on top:
cuDNN's autotuning inside training, and the kernel penalty's small kernels, one tensor
at a time. Every cell also pays a fixed start-up cost.

Every figure a plan uses is an input with a label, **measured** (with where) or
**assumed** (with why): ``plan_inputs`` lists them, and each stage of ``plan`` names
the inputs it rests on and is labelled measured only if all of them are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from paperlib.run.profiles import load_profile
from paperlib.run.rates import stage_rate
from paperlib.run.stages import (
    DEEPFOOL_STEPS,
    FAB_PASSES_PER_STEP,
    KERNELS_PER_TENSOR,
    SURVIVING,
    Stage,
    profile_stages,
)

# Kernel start, imports, data from the cache, writing results: a smoke density cell,
# whose arithmetic is negligible, takes about 4 s on two CPU cores. Steps too small to
# fill a GPU cost more than their FLOPs say (a paper density cell took 19.5 s on an
# H200); the Performance page shows the plan beside what was measured.
CELL_OVERHEAD_S = 5.0
# A training step on a GPU costs at least this long, however little arithmetic it does:
# kernel launches, the optimizer and the loader's bookkeeping. A paper density cell
# (3,520 steps of a single-layer model, under a second of arithmetic) took 18.4-20.0 s on
# an H200, start-up included: about 4 ms a step. On a CPU, arithmetic dominates.
GPU_STEP_FLOOR_S = 0.004
# cuDNN tunes each distinct convolution once per batch shape and direction, inside
# training only (accel.autotuned), by running every candidate algorithm once: about 20
# runs of a millisecond or so at these sizes. Seconds per convolution and batch shape,
# all three directions together.
AUTOTUNE_S = 0.05
LAUNCH_S = 5e-6  # one CUDA kernel launch and its tiny kernel, for the penalty's kernels

# The plan's other inputs: (value, unit, label, basis). Rates come from ``rates.stage_rate``.
ASSUMPTIONS = {
    "start-up per cell": (
        CELL_OVERHEAD_S,
        "s",
        "assumed",
        "a smoke density cell takes about 4 s on two CPU cores; taken as the same on a GPU",
    ),
    "GPU step floor": (
        GPU_STEP_FLOOR_S,
        "s per step",
        "assumed",
        "from paper density cells on an H200 (3,520 steps in 18.4-20.0 s with start-up); "
        "launch-bound, so taken as the same on other GPUs",
    ),
    "DeepFool steps": (
        DEEPFOOL_STEPS,
        "steps per image",
        "assumed",
        "undefended models flip within a few steps; not counted on these models",
    ),
    "AutoAttack survivors": (
        SURVIVING,
        "of the images",
        "assumed",
        "share left after APGD-CE for APGD-T, FAB-T and Square, at every endpoint radius",
    ),
    "FAB-T passes": (
        FAB_PASSES_PER_STEP,
        "gradient passes per step",
        "assumed",
        "FAB-T needs the gradients of two logits per step",
    ),
    "autotuning": (
        AUTOTUNE_S,
        "s per convolution and batch shape",
        "assumed",
        "cuDNN runs every candidate algorithm once per distinct convolution and batch shape;"
        " never timed on these models",
    ),
    "penalty kernels": (
        LAUNCH_S,
        "s per kernel",
        "assumed",
        "a launch and a tiny kernel, not hidden behind the convolutions; operators per "
        f"tensor counted with torch.profiler on a CPU: {KERNELS_PER_TENSOR}",
    ),
    "cells sharing a device": (
        None,
        "cells",
        "assumed",
        "the profile's cells at once per device: their arithmetic adds up (no gain from "
        "sharing is counted), their start-up overlaps",
    ),
    "FLOPs per image": (
        None,
        "",
        "measured",
        "counted by torch.utils.flop_counter on the meta device (paperlib.core.cost)",
    ),
    "backward pass": (
        2,
        "forward passes",
        "assumed",
        "the usual rule: the input and the weight gradients each cost a forward pass",
    ),
}


def load_reports(folder: Path) -> dict[str, dict]:
    """Every ``make bench`` report in ``folder`` (``benchmarks/results``), by file stem
    (``cpu``, ``cuda``, ...): the measured rates a plan uses and the Performance page shows."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def load_recipes(folder: Path) -> list[dict]:
    """The runs of ``python -m benchmarks.recipe`` in ``folder/recipe``, each with its
    report's profile, device and file: the evidence that a training length suffices."""
    runs = []
    for path in sorted((folder / "recipe").glob("*.json")):
        report = json.loads(path.read_text())
        where = {"profile": report["profile"], "device": report["device"], "file": path.name}
        runs += [run | where for run in report["runs"]]
    return runs


def _recipe(arch: str, cfg, recipes: list[dict]) -> dict:
    """The input that ``arch`` learns in the profile's epochs: measured where a recipe
    probe ran exactly these settings to the end, assumed elsewhere."""
    settings = (arch, cfg.epochs, cfg.batch_size, cfg.lr)
    runs = [r for r in recipes if (r["arch"], r["epochs"], r["batch_size"], r["lr"]) == settings]
    row = {"input": f"recipe: {arch}", "value": cfg.epochs, "unit": "epochs"}
    if runs:
        run = runs[0]
        return row | {
            "label": "measured",
            "basis": f"python -m benchmarks.recipe on {run['device']}: {run['test_accuracy']:.1%} "
            f"test accuracy at batch {cfg.batch_size}, peak rate {cfg.lr:g} "
            f"(benchmarks/results/recipe/{run['file']})",
        }
    return row | {
        "label": "assumed",
        "basis": f"no recipe probe of {arch} at batch {cfg.batch_size}, peak rate {cfg.lr:g} "
        "finished: it may need more epochs than the architectures probed",
    }


def cells_at_once(profile_name: str, on_gpu: bool) -> int:
    """Cells the grid runs at once on one device: the profile's ``grid.workers_per_gpu``
    on one GPU, its ``grid.workers`` on a machine without one (``GridConfig.workers_here``,
    which the grid runner uses)."""
    return load_profile(profile_name).grid.workers_here(1 if on_gpu else 0)


def _assumption(name: str, value=None) -> dict:
    default, unit, label, basis = ASSUMPTIONS[name]
    return {
        "input": name,
        "value": default if value is None else value,
        "unit": unit,
        "label": label,
        "basis": basis,
    }


def _price(stage: Stage, device: str | None, reports: dict) -> tuple[float, list[dict]]:
    """Seconds of one cell's ``stage`` on one device, and the inputs they rest on."""
    if stage.fixed:
        if stage.tuned:
            return stage.tuned * AUTOTUNE_S, [_assumption("autotuning")]
        return stage.launches * LAUNCH_S, [_assumption("penalty kernels")]
    rate = stage_rate(stage.arch, stage.method, stage.precision, device, reports, stage.batch_size)
    precision = stage.precision if device else "fp32"
    inputs = [
        {
            "input": f"rate: {stage.arch} {stage.method} {precision}",
            "value": rate.flop_per_s / 1e12,
            "unit": "TFLOP/s",
            "label": rate.label,
            "basis": rate.basis,
        },
        _assumption("FLOPs per image"),
        *(_assumption(name) for name in stage.assumes),
    ]
    if stage.gradient:
        inputs.append(_assumption("backward pass"))
    seconds = stage.flops / rate.flop_per_s
    if device and stage.steps:
        seconds = max(seconds, stage.steps * GPU_STEP_FLOOR_S)
        inputs.append(_assumption("GPU step floor"))
    return seconds, inputs


def _priced(profile_name: str, device: str | None, reports: dict, recipes: list[dict]):
    """One row per cell and stage (with the names of its inputs), and every input."""
    at_once = cells_at_once(profile_name, on_gpu=device is not None)
    adversarial = load_profile(profile_name).adversarial
    rows, inputs = [], {}
    for cell_id, stage in profile_stages(profile_name):
        if stage.fixed and device is None:
            continue  # autotuning and kernel launches are CUDA's costs
        seconds, used = _price(stage, device, reports)
        if (stage.experiment, stage.stage) == ("adversarial", "training"):
            used.append(_recipe(stage.arch, adversarial, recipes))
        inputs |= {i["input"]: i for i in used}
        rows.append(
            {
                "experiment": stage.experiment,
                "stage": stage.stage,
                "precision": "–" if stage.fixed else stage.precision if device else "fp32",
                "cell": cell_id,
                "tflop": stage.flops / 1e12,
                "seconds": seconds,
                "inputs": {i["input"] for i in used},
            }
        )
    startup = [_assumption("start-up per cell"), _assumption("cells sharing a device", at_once)]
    inputs |= {i["input"]: i for i in startup}
    return pd.DataFrame(rows), inputs, at_once


def plan(
    profile_name: str, device: str | None, reports: dict[str, dict], recipes: list[dict] = ()
) -> pd.DataFrame:
    """Per experiment, stage and precision: cells, TFLOPs and predicted seconds on one
    device, at the rates in ``reports`` (``load_reports``); each row labelled measured
    only if every input it rests on was measured, and naming them (``plan_inputs``).
    ``recipes`` (``load_recipes``) say whether the training length was measured.

    The arithmetic of cells that run at once (``cells_at_once``) shares the device, so it
    adds up; their start-up overlaps, so it divides. On a GPU a stage takes at least
    ``GPU_STEP_FLOOR_S`` per optimizer step."""
    table, inputs, at_once = _priced(profile_name, device, reports, list(recipes))
    summary = (
        table.groupby(["experiment", "stage", "precision"], sort=False)
        .agg(
            cells=("cell", "nunique"),
            tflop=("tflop", "sum"),
            seconds=("seconds", "sum"),
            inputs=("inputs", lambda sets: set().union(*sets)),
        )
        .reset_index()
    )
    cells = table.groupby("experiment", sort=False)["cell"].nunique()
    startup = pd.DataFrame(
        {
            "experiment": cells.index,
            "stage": "start-up",
            "precision": "–",
            "cells": cells.values,
            "tflop": 0.0,
            "seconds": cells.values * CELL_OVERHEAD_S / at_once,
            "inputs": [{"start-up per cell", "cells sharing a device"}] * len(cells),
        }
    )
    summary = pd.concat([summary, startup]).sort_values("experiment", kind="stable")
    summary["label"] = [
        "measured" if all(inputs[name]["label"] == "measured" for name in used) else "assumed"
        for used in summary["inputs"]
    ]
    summary["inputs"] = summary["inputs"].map(sorted)
    return summary.reset_index(drop=True)


def plan_inputs(
    profile_name: str, device: str | None, reports: dict[str, dict], recipes: list[dict] = ()
) -> pd.DataFrame:
    """Every figure ``plan`` uses: its value and unit, ``measured`` (with where) or
    ``assumed`` (with why)."""
    _, inputs, _ = _priced(profile_name, device, reports, list(recipes))
    return pd.DataFrame(list(inputs.values()))


def format_plan(
    profile_name: str,
    device: str | None,
    reports: dict[str, dict],
    recipes: list[dict] = (),
    workers_list=(1, 8),
) -> str:
    """The text ``python -m paperlib plan`` prints."""
    table = plan(profile_name, device, reports, recipes)
    inputs = plan_inputs(profile_name, device, reports, recipes).sort_values(["label", "input"])
    number = {name: i for i, name in enumerate(inputs["input"], start=1)}
    where = device.upper() if device else f"this machine ({os.cpu_count()} cores)"
    at_once = cells_at_once(profile_name, on_gpu=device is not None)
    lines = [f"plan for profile {profile_name!r} on {where}, {at_once} cells at once", ""]
    shown = table.assign(
        tflop=table["tflop"].round(1),
        seconds=table["seconds"].round(0),
        inputs=[
            ",".join(str(i) for i in sorted(number[n] for n in used)) for used in table["inputs"]
        ],
    )
    lines += [shown.to_string(index=False), ""]
    per_experiment = table.groupby("experiment", sort=False)["seconds"].sum()
    for experiment, seconds in per_experiment.items():
        lines.append(f"{experiment}: {seconds / 60:.1f} min")
    total = table["seconds"].sum()
    for workers in workers_list:
        label = "device" if workers == 1 else "devices"
        lines.append(f"total on {workers} {label}: {total / workers / 60:.1f} min")
    lines += ["", "inputs: each figure the plan rests on, measured (where) or assumed (why)"]
    for row in inputs.itertuples():
        value = "" if row.value is None or pd.isna(row.value) else f" = {row.value:.4g} {row.unit}"
        lines.append(f"[{number[row.input]}] {row.label}: {row.input}{value}: {row.basis}")
    return "\n".join(lines)
