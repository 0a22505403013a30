"""What a profile's grid will cost before it runs: FLOPs per stage, and time.

Each stage's work is counted in image passes (a forward pass, or a forward and
backward pass, of one image) from the profile's sizes, and converted to FLOPs with the
per-image counts of ``paperlib.core.cost``. Time is FLOPs over a sustained rate: the
utilisation of our training loop that ``make bench`` measured for that architecture
on this machine (or, with ``device``, on a GPU) times the device's peak, or 35 % of the
bf16 peak where nothing was measured. Every cell also pays a fixed start-up cost.

Attacks stop early on images they have already fooled, so some stages depend on the
models. Those assumptions are named constants below, stated on the Performance page.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import pandas as pd

from paperlib.core.cost import BF16_PEAK, forward_flops, gradient_flops
from paperlib.core.registry import PAPER_COUNTERPART
from paperlib.core.settings import AdversarialConfig, AttributionConfig, DensityConfig
from paperlib.run.profiles import load_grid, load_profile

DEFAULT_UTILISATION = 0.35  # of the bf16 peak, where no GPU run was measured
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
# Assumptions about attacks that stop early (on models that have not been made robust):
DEEPFOOL_STEPS = 3  # DeepFool steps per image until the label flips
SURVIVING = 0.1  # share of images left for AutoAttack's components after APGD-CE
FAB_PASSES_PER_STEP = 2  # FAB-T needs the gradients of two logits per step


class PlanError(ValueError):
    """A plan that cannot be made: no measured rate, or an unknown device."""


@dataclass(frozen=True)
class Stage:
    experiment: str
    stage: str
    arch: str
    width: float
    forward: float  # forward passes of one image
    gradient: float  # forward and backward passes of one image
    steps: float = 0.0  # optimizer steps (each at least GPU_STEP_FLOOR_S on a GPU)

    @property
    def flops(self) -> float:
        return self.forward * forward_flops(self.arch, self.width) + self.gradient * (
            gradient_flops(self.arch, self.width)
        )


def density_stages(cfg: DensityConfig) -> list[Stage]:
    def stage(name, forward=0.0, gradient=0.0, steps=0.0):
        return Stage("density", name, "single_layer", 1.0, forward, gradient, steps)

    return [
        stage(
            "training",
            forward=cfg.epochs * cfg.val_size,
            gradient=cfg.epochs * cfg.train_size,
            steps=cfg.epochs * ceil(cfg.train_size / cfg.batch_size),
        ),
        stage("evaluation", forward=2 * cfg.test_size + cfg.train_size),
    ]


def _deepfool_passes(cfg: AdversarialConfig) -> float:
    """Gradient-pass equivalents per image: each step a forward pass and one input
    gradient per candidate class (a backward pass costs two forward passes)."""
    a = cfg.attacks
    per_step = (1 + 2 * a.deepfool_candidates) / 3
    return min(DEEPFOOL_STEPS, a.deepfool_steps) * per_step


def attack_passes(cfg: AdversarialConfig) -> dict[str, float]:
    """Gradient passes per attacked image, for each of the paper's attacks."""
    return {"fgsm": 1.0, "pgd": float(cfg.attacks.pgd_steps), "deepfool": _deepfool_passes(cfg)}


def adversarial_stages(cfg: AdversarialConfig, arch: str) -> list[Stage]:
    width, a, n = cfg.width[arch], cfg.attacks, cfg.eval_size
    passes = attack_passes(cfg)
    per_attack = sum(passes.values())
    autoattack = {
        "apgd-ce": a.autoattack_steps,
        "apgd-t": SURVIVING * 9 * a.autoattack_steps,
        "fab-t": SURVIVING * 9 * a.autoattack_steps * FAB_PASSES_PER_STEP,
    }
    square = SURVIVING * a.square_queries if "square" in a.autoattack else 0.0
    radii = len({*cfg.sweep_eps, cfg.standard_eps})

    def stage(name, forward=0.0, gradient=0.0, steps=0.0):
        return Stage("adversarial", name, arch, width, forward, gradient, steps)

    mixed = 2 * cfg.adv_train_size  # clean images and their adversarial versions
    return [
        stage(
            "training",
            forward=cfg.epochs * cfg.val_size,
            gradient=cfg.epochs * cfg.train_size,
            steps=cfg.epochs * ceil(cfg.train_size / cfg.batch_size),
        ),
        stage("clean evaluation", forward=2 * cfg.test_size + n),
        stage("attacks on the clean model", gradient=n * per_attack),
        stage("crafting training images", gradient=cfg.adv_train_size * per_attack),
        stage(
            "fine-tuning",
            forward=3 * cfg.finetune_epochs * cfg.val_size,
            gradient=3 * cfg.finetune_epochs * mixed,
            steps=3 * cfg.finetune_epochs * ceil(mixed / cfg.batch_size),
        ),
        # every fine-tuned model against every attack, white-box, plus the transfer images
        stage("cross-attack matrix", forward=9 * n, gradient=3 * n * per_attack),
        stage(
            "eps sweep",
            gradient=radii * n * (1 + a.standard_steps * a.standard_restarts),
        ),
        stage(
            "AutoAttack",
            forward=n * square,
            gradient=n * sum(v for k, v in autoattack.items() if k in a.autoattack),
        ),
    ]


def attribution_stages(cfg: AttributionConfig, arch: str, width: float) -> list[Stage]:
    patches = {cfg.patch, cfg.patch_small, *cfg.patch_sweep}
    positions = sum(((32 - p) // cfg.stride + 1) ** 2 + 1 for p in patches)
    blurs = len({cfg.sigma, *cfg.sigma_sweep})
    return [
        Stage("attribution", "occlusion", arch, width, cfg.n_images * positions, 0.0),
        Stage(
            "attribution",
            "Grad-CAM",
            arch,
            width,
            cfg.n_images,
            cfg.n_images * (1 + blurs + 1 + cfg.sensitivity_samples),
        ),
    ]


def profile_stages(profile_name: str) -> list[tuple[str, Stage]]:
    """(cell id, stage) for every cell of every experiment of the profile's grid."""
    profile = load_profile(profile_name)
    rows = []
    for cell in load_grid("density", profile_name):
        rows += [(cell.cell_id, s) for s in density_stages(profile.density)]
    for cell in load_grid("adversarial", profile_name):
        cfg = profile.adversarial
        rows += [(cell.cell_id, s) for s in adversarial_stages(cfg, cell.arch)]
        attribution = attribution_stages(profile.attribution, cell.arch, cfg.width[cell.arch])
        rows += [(cell.cell_id, s) for s in attribution]
    return rows


def sustained_rate(arch: str, device: str | None, reports: dict[str, dict]) -> tuple[float, str]:
    """FLOP/s for ``arch`` on ``device`` (None: this machine), and where it comes from."""
    if device is None:
        rows = reports.get("cpu", {}).get("utilisation", [])
        rates = [r["tflop_per_s"] * 1e12 for r in rows if r["arch"] == arch]
        if rates:
            return max(rates), f"make bench ({reports['cpu']['device']})"
        # A reduced architecture not measured yet runs at its family's measured FLOP rate
        # (the same blocks): an assumption, and the plan says so.
        family = PAPER_COUNTERPART.get(arch, arch)
        rates = [r["tflop_per_s"] * 1e12 for r in rows if r["arch"] == family]
        if rates:
            return max(
                rates
            ), f"assumed: {family}'s rate from make bench ({reports['cpu']['device']})"
        raise PlanError(
            f"no training rate for {arch} measured on this machine yet: run `make bench` first, "
            "or plan for a named GPU with --device"
        )
    if device not in BF16_PEAK:
        raise PlanError(f"unknown device {device!r}; choose one of {sorted(BF16_PEAK)}")
    peak = BF16_PEAK[device]
    rows = [
        r
        for r in reports.get("cuda", {}).get("utilisation", [])
        if r["arch"] == arch and r["precision"] == "bf16" and "utilisation" in r
    ]
    if rows:
        best = max(rows, key=lambda r: r["utilisation"])
        return peak * best["utilisation"], (
            f"{best['utilisation']:.1%} of peak, measured by make bench "
            f"({reports['cuda']['device']}, batch {best['batch_size']})"
        )
    return peak * DEFAULT_UTILISATION, f"{DEFAULT_UTILISATION:.0%} of peak (not measured)"


def load_reports(folder: Path) -> dict[str, dict]:
    """Every ``make bench`` report in ``folder`` (``benchmarks/results``), by file stem
    (``cpu``, ``cuda``, ...): the measured rates a plan uses and the Performance page shows."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def cells_at_once(profile_name: str, on_gpu: bool) -> int:
    """Cells the grid runs at once on one device: the profile's ``grid.workers_per_gpu``
    on one GPU, its ``grid.workers`` on a machine without one (``GridConfig.workers_here``,
    which the grid runner uses)."""
    return load_profile(profile_name).grid.workers_here(1 if on_gpu else 0)


def plan(profile_name: str, device: str | None, reports: dict[str, dict]) -> pd.DataFrame:
    """Per experiment and stage: cells, TFLOPs and predicted seconds on one device, at the
    rates measured in ``reports`` (``load_reports``).

    The arithmetic of cells that run at once (``cells_at_once``) shares the device, so it
    adds up; their start-up overlaps, so it divides. On a GPU a stage takes at least
    ``GPU_STEP_FLOOR_S`` per optimizer step."""
    at_once = cells_at_once(profile_name, on_gpu=device is not None)
    floor = GPU_STEP_FLOOR_S if device else 0.0
    rows = []
    for cell_id, stage in profile_stages(profile_name):
        rate, source = sustained_rate(stage.arch, device, reports)
        rows.append(
            {
                "experiment": stage.experiment,
                "stage": stage.stage,
                "cell": cell_id,
                "arch": stage.arch,
                "tflop": stage.flops / 1e12,
                "seconds": max(stage.flops / rate, stage.steps * floor),
                "rate": source,
            }
        )
    table = pd.DataFrame(rows)
    cells = table.groupby("experiment", sort=False)["cell"].nunique()
    summary = (
        table.groupby(["experiment", "stage"], sort=False)
        .agg(cells=("cell", "nunique"), tflop=("tflop", "sum"), seconds=("seconds", "sum"))
        .reset_index()
    )
    startup = pd.DataFrame(
        {
            "experiment": cells.index,
            "stage": "start-up",
            "cells": cells.values,
            "tflop": 0.0,
            "seconds": cells.values * CELL_OVERHEAD_S / at_once,
        }
    )
    summary = pd.concat([summary, startup]).sort_values("experiment", kind="stable")
    return summary.reset_index(drop=True)


def rate_sources(profile_name: str, device: str | None, reports: dict) -> dict[str, str]:
    """Where each architecture's sustained rate comes from."""
    archs = {stage.arch for _, stage in profile_stages(profile_name)}
    return {arch: sustained_rate(arch, device, reports)[1] for arch in sorted(archs)}


def format_plan(
    profile_name: str, device: str | None, reports: dict[str, dict], workers_list=(1, 8)
) -> str:
    """The text ``python -m paperlib plan`` prints."""
    table = plan(profile_name, device, reports)
    where = device.upper() if device else f"this machine ({os.cpu_count()} cores)"
    lines = [f"plan for profile {profile_name!r} on {where}", ""]
    shown = table.assign(tflop=table["tflop"].round(1), seconds=table["seconds"].round(0))
    lines.append(shown.to_string(index=False))
    lines.append("")
    per_experiment = table.groupby("experiment", sort=False)["seconds"].sum()
    for experiment, seconds in per_experiment.items():
        lines.append(f"{experiment}: {seconds / 60:.1f} min")
    total = table["seconds"].sum()
    for workers in workers_list:
        label = "device" if workers == 1 else "devices"
        lines.append(f"total on {workers} {label}: {total / workers / 60:.1f} min")
    lines.append("")
    lines += [
        f"rate for {arch}: {source}"
        for arch, source in rate_sources(profile_name, device, reports).items()
    ]
    return "\n".join(lines)
