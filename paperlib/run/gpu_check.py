"""`make gpu-check`: the first minutes on any machine with a GPU, before a grid.

Every stage of the grid's cells runs on the device, per architecture of the paper
profile, in two parts:

- ``smoke``: the smoke profile's sizes and settings, with every attack (FGSM, targeted
  PGD, DeepFool, standard PGD, AutoAttack's four components), adversarial fine-tuning
  and every attribution, as the smoke grid runs them but on the device's fast path;
- ``paper``: one step of each stage at the paper profile's sizes, full width: a training
  step at its batch, one step of each attack on its attack batch (DeepFool's is the
  largest pass, images x candidate classes), one step of each AutoAttack component, an
  occlusion pass of its batch x its patches per pass, Grad-CAM and its sensitivity on
  its batch, a verdict pass of 1,000 images.

Each stage records its seconds and its peak memory (``torch.cuda.max_memory_allocated``),
its passes split to the memory budget of one of the cells that share a GPU
(``grid.workers_per_gpu``, as a grid worker's are). A stage fails when it raises, or
when its peak times those cells exceeds the GPU's memory. Each failure is printed with its
traceback as it happens; the report (JSON and markdown) is written anyway, and the check
exits non-zero. It stops starting stages after ``budget_s`` seconds (five minutes), and
those left count as failures too.

Without a GPU (or with ``dry_run``) the same stages run on the CPU at tiny sizes, for
VGG-16 alone and one step of everything, in under a minute; the tests run it so. Peak
memory is then not measured (None).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import sys
import time
import traceback
from pathlib import Path
from unittest import mock

import pandas as pd
import torch

from paperlib.core.accel import as_input, place
from paperlib.core.attacks import make_attack, run_attack, run_autoattack
from paperlib.core.attribution import (
    gaussian_blur,
    gradcam_map,
    gradcam_sensitivity,
    occlusion_map,
    occlusion_maps,
    predicted_class,
)
from paperlib.core.metrics import predict
from paperlib.core.models import SingleLayerCNN, make_model
from paperlib.core.registry import ATTACKS
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import CELLS_PER_GPU_ENV, Profile
from paperlib.core.train import (
    adversarial_finetune,
    density_objective,
    penalized_cross_entropy,
    seed_everything,
    train,
)
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.provenance import device_description, git_state, package_versions
from paperlib.run.store import write_atomic, write_json

BUDGET_S = 300.0  # the whole check, on a GPU
DRY_RUN_IMAGES = 4  # per stage on a CPU
DRY_RUN_ARCH = "vgg16"  # the paper's network with the fewest layers: a dry run's cost is per layer
VERDICT_IMAGES = 1000  # metrics.predict's batch: the verdict pass of every attack
GIB = 2**30


def paper_archs() -> list[str]:
    """The architectures of the paper profile's grid, in its order."""
    return list(dict.fromkeys(cell.arch for cell in load_grid("adversarial", "paper")))


def one_step(profile: Profile) -> Profile:
    """``profile`` with every iterative attack cut to one step (its passes keep their
    size): what the paper part runs."""
    a = profile.adversarial.attacks
    attacks = dataclasses.replace(
        a,
        pgd_steps=1,
        deepfool_steps=1,
        standard_steps=1,
        standard_restarts=1,
        autoattack_steps=1,
        square_queries=1,
    )
    return dataclasses.replace(
        profile, adversarial=dataclasses.replace(profile.adversarial, attacks=attacks)
    )


def tiny(profile: Profile) -> Profile:
    """``profile`` for a dry run: one step of every attack, and occlusion with one 8 x 8
    patch at stride 8 (17 passes of an image, not hundreds)."""
    attribution = dataclasses.replace(
        profile.attribution, patch=8, patch_small=8, patch_sweep=[8], stride=8
    )
    return dataclasses.replace(one_step(profile), attribution=attribution)


def _random_images(n: int, device: torch.device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator).to(device)


def _sizes(profile: Profile, part: str, dry_run: bool) -> dict[str, int]:
    """Images per stage: a smoke cell's own counts, or one batch of the paper's."""
    adv, att = profile.adversarial, profile.attribution
    if part == "smoke":
        sizes = {"attack": adv.eval_size, "train": adv.train_size, "maps": att.n_images}
    else:
        sizes = {"attack": adv.attacks.batch_size, "train": adv.batch_size, "maps": att.batch_size}
    sizes["verdict"] = VERDICT_IMAGES
    return {k: min(n, DRY_RUN_IMAGES) if dry_run else n for k, n in sizes.items()}


def cell_stages(profile: Profile, arch: str, part: str, device: torch.device, dry_run: bool):
    """(stage name, call) for one architecture: its model, random images labelled with
    the model's own predictions (every image starts correctly classified), and each
    stage of a cell at ``profile``'s sizes (``_sizes``)."""
    adv, att, n = profile.adversarial, profile.attribution, _sizes(profile, part, dry_run)
    width = load_profile("smoke").adversarial.width[arch] if dry_run else adv.width[arch]
    seed_everything(0)
    model = place(make_model(arch, width), device).eval()
    images = _random_images(max(n.values()), device, seed=1)
    labels = predict(model, images).to(device)
    x, y = images[: n["attack"]], labels[: n["attack"]]
    maps = as_input(images[: n["maps"]])
    target = predicted_class(model, maps)
    train_set, val_set = (images[: n["train"]], labels[: n["train"]]), (x, y)
    fit = {
        "objective": penalized_cross_entropy(make_penalty("elastic", 1e-2)),
        "epochs": 1,
        "batch_size": min(adv.batch_size, n["train"]),
        "lr": adv.finetune_lr,
        "optimizer": adv.optimizer,
        "seed": 0,
        "device": device,
        "augment": adv.augment,
        "progress": False,
    }
    sensitivity = (att.sensitivity_radius, att.sensitivity_samples)
    stages = [
        ("training", lambda: train(copy.deepcopy(model), train_set, val_set, **fit)),
        *[
            (name, lambda name=name: run_attack(name, model, adv.attacks, x, y, device))
            for name in (*ATTACKS, "pgd_standard")
        ],
        ("autoattack", lambda: run_autoattack(model, adv.attacks, x, y, device, adv.standard_eps)),
        ("verdicts", lambda: predict(model, images[: n["verdict"]])),
        ("grad-cam", lambda: gradcam_map(model, gaussian_blur(maps, att.sigma), target)),
        ("grad-cam sensitivity", lambda: gradcam_sensitivity(model, maps, target, *sensitivity)),
    ]
    if part == "paper":
        # one pass of its largest size: a full pass of patch positions (an 8 x 8 grid of
        # 4 x 4 patches), plus the unoccluded image
        per_pass = att.perturbations_per_eval
        return [*stages, ("occlusion", lambda: occlusion_map(model, maps, 4, 4, target, per_pass))]
    attack = make_attack("fgsm", model, adv.attacks)
    finetune = {**fit, "attack_batch": adv.attacks.batch_size}
    patches = sorted({att.patch, att.patch_small, *att.patch_sweep})

    def occlusion_every_patch():
        for p in patches:
            occlusion_maps(
                model, maps, target, p, att.stride, att.batch_size, att.perturbations_per_eval
            )

    tune = functools.partial(adversarial_finetune, model, attack, (x, y), val_set, **finetune)
    return [*stages, ("fine-tuning", tune), ("occlusion", occlusion_every_patch)]


def density_stage(profile: Profile, device: torch.device, dry_run: bool):
    """Experiment 1's training step at ``profile``'s batch (the single-layer model)."""
    cfg = profile.density
    n = DRY_RUN_IMAGES if dry_run else cfg.batch_size
    images = _random_images(n, device, seed=2)
    labels = torch.randint(0, 10, (n,)).to(device)
    fit = {"epochs": 1, "batch_size": n, "lr": cfg.lr, "optimizer": cfg.optimizer, "seed": 0}
    return lambda: train(
        SingleLayerCNN(),
        (images, labels),
        (images, labels),
        objective=density_objective(1e-5),
        device=device,
        progress=False,
        **fit,
    )


def measure(call, device: torch.device) -> tuple[dict, object]:
    """Run ``call`` once: its seconds, its peak memory on CUDA (None elsewhere) and the
    traceback of what it raised (None if nothing), with what it returned."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start, returned, error = time.perf_counter(), None, None
    try:
        returned = call()
        if cuda:
            torch.cuda.synchronize(device)
    except Exception:  # recorded, printed and turned into the exit status: never lost
        error = traceback.format_exc()
    row = {
        "seconds": time.perf_counter() - start,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "error": error,
    }
    return row, returned


def _too_big(row: dict, cells: int, total: int | None) -> str | None:
    peak = row["peak_memory_bytes"]
    if total is None or peak is None or peak * cells <= total:
        return None
    return (
        f"peak {peak / GIB:.1f} GiB x {cells} cells sharing the GPU exceeds its "
        f"{total / GIB:.1f} GiB: the grid's workers would run out of memory"
    )


def run_check(device: torch.device, dry_run: bool, budget_s: float = BUDGET_S) -> dict:
    """Every stage of both parts on ``device``; the report as a dict (see module doc)."""
    smoke, paper = load_profile("smoke"), one_step(load_profile("paper"))
    archs = paper_archs()
    if dry_run:  # the plumbing only: the cheapest network, every stage for one step
        smoke, paper, archs = tiny(smoke), tiny(paper), [DRY_RUN_ARCH]
    cells = paper.grid.workers_per_gpu
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    started, rows = time.perf_counter(), []

    def record(part, arch, stage, call):
        if time.perf_counter() - started > budget_s:
            row = {"seconds": 0.0, "peak_memory_bytes": None, "error": None}
            row["error"] = f"not started: the check's {budget_s:.0f} s were spent"
            returned = None
        else:
            row, returned = measure(call, device)
            row["error"] = row["error"] or _too_big(row, cells, total)
        row = {"part": part, "arch": arch, "stage": stage, **row}
        row["status"] = "failed" if row["error"] else "ok"
        if row["error"]:
            print(f"FAILED {part} {arch} {stage}:\n{row['error']}", file=sys.stderr, flush=True)
        rows.append(row)
        return returned

    # Every pass splits to fit its share of the GPU, as in a grid worker beside the others.
    with mock.patch.dict(os.environ, {CELLS_PER_GPU_ENV: str(cells)}):
        for part, profile in (("smoke", smoke), ("paper", paper)):
            record(part, "single_layer", "training", density_stage(profile, device, dry_run))
            for arch in archs:
                setup = functools.partial(cell_stages, profile, arch, part, device, dry_run)
                stages = record(part, arch, "setup", setup)
                for stage, call in stages or []:
                    record(part, arch, stage, call)
    return {
        "device": device_description(device),
        "dry_run": dry_run,
        "cells_per_gpu": cells,
        "total_memory_bytes": total,
        "budget_s": budget_s,
        "seconds": time.perf_counter() - started,
        "packages": package_versions(),
        **git_state(),
        "stages": rows,
        "failed": sum(row["status"] == "failed" for row in rows),
    }


def report_markdown(report: dict) -> str:
    """The report as a page: one line of context, then a table of the stages."""
    kind = " (dry run on a CPU: tiny sizes, no memory measured)" if report["dry_run"] else ""
    memory = report["total_memory_bytes"]
    lines = [
        f"# GPU check: {report['device']}{kind}",
        "",
        f"{len(report['stages'])} stages, {report['failed']} failed, "
        f"{report['seconds']:.0f} s in all (budget {report['budget_s']:.0f} s)"
        + (
            f"; {report['cells_per_gpu']} cells share the GPU's {memory / GIB:.1f} GiB."
            if memory
            else "."
        ),
        "",
        "| part | arch | stage | seconds | peak GiB | status |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["stages"]:
        peak = row["peak_memory_bytes"]
        shown = "–" if peak is None else f"{peak / GIB:.2f}"
        lines.append(
            f"| {row['part']} | {row['arch']} | {row['stage']} | {row['seconds']:.2f} | "
            f"{shown} | {row['status']} |"
        )
    return "\n".join(lines) + "\n"


def gpu_check(out: Path, dry_run: bool = False, budget_s: float = BUDGET_S) -> int:
    """Run the check (a dry run on the CPU without a GPU), write ``out/<kind>.json`` and
    ``.md``, and return the exit status: 0 if every stage passed, 1 otherwise."""
    dry_run = dry_run or not torch.cuda.is_available()
    device = torch.device("cpu" if dry_run else "cuda")
    report = run_check(device, dry_run, budget_s)
    name = "dry-run" if dry_run else "cuda"
    write_json(out / f"{name}.json", report)
    write_atomic(out / f"{name}.md", report_markdown(report).encode())
    print(report_markdown(report))
    print(f"wrote {out / name}.json and .md")
    return 1 if report["failed"] else 0


def gpu_check_table(checks: dict[str, dict]) -> pd.DataFrame:
    """``make gpu-check``'s reports (``load_reports`` of ``benchmarks/results/gpu-check``):
    seconds, peak memory (GiB; none on a CPU) and status of every stage, per report,
    part and architecture."""
    rows = []
    for check in checks.values():
        report = check["device"] + (" (dry run)" if check["dry_run"] else "")
        for row in check["stages"]:
            peak = row["peak_memory_bytes"]
            rows.append(
                {
                    "report": report,
                    "part": row["part"],
                    "arch": row["arch"],
                    "stage": row["stage"],
                    "seconds": round(row["seconds"], 2),
                    "peak GiB": None if peak is None else round(peak / 2**30, 2),
                    "status": row["status"],
                }
            )
    return pd.DataFrame(rows).set_index(["report", "part", "arch", "stage"])
