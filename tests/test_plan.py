"""The cost model behind `make plan`: stage counts by hand, rates, and the command."""

import dataclasses

import pytest

from paperlib.__main__ import main
from paperlib.core.cost import forward_flops, gradient_flops
from paperlib.core.registry import ARCHITECTURES, EXPERIMENTS
from paperlib.core.settings import DensityConfig
from paperlib.run.plan import (
    CELL_OVERHEAD_S,
    DEFAULT_UTILISATION,
    GPU_STEP_FLOOR_S,
    PlanError,
    adversarial_stages,
    density_stages,
    plan,
    sustained_rate,
)
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.store import REPO_ROOT


def test_density_stages_count_every_pass_of_a_cell():
    cfg = DensityConfig(train_size=100, val_size=10, test_size=20, epochs=2)
    training, evaluation = density_stages(cfg)
    f = forward_flops("single_layer")
    assert training.flops == 2 * 100 * 3 * f + 2 * 10 * f
    assert evaluation.flops == (2 * 20 + 100) * f


def test_small_steps_on_a_gpu_cost_at_least_the_step_floor():
    """A paper density cell does under a second of arithmetic in 3,520 steps, yet took
    about 19 s on an H200: on a GPU each step costs at least the floor; on a CPU the
    arithmetic alone sets the time."""
    cfg = load_profile("paper").density
    (training,) = [s for s in density_stages(cfg) if s.stage == "training"]
    assert training.steps == cfg.epochs * -(-cfg.train_size // cfg.batch_size) == 3520
    cells = len(load_grid("density", "paper"))
    gpu = plan("paper", "h100", {}).set_index(["experiment", "stage"])
    assert gpu.loc[("density", "training"), "seconds"] == pytest.approx(
        cells * 3520 * GPU_STEP_FLOOR_S
    )
    rows = [{"arch": a, "tflop_per_s": 1.0} for a in ("single_layer", *ARCHITECTURES)]
    on_cpu = plan("paper", None, {"cpu": {"device": "cpu", "utilisation": rows}})
    on_cpu = on_cpu.set_index(["experiment", "stage"])
    assert on_cpu.loc[("density", "training"), "seconds"] == pytest.approx(
        cells * training.flops / 1e12
    )


def test_adversarial_training_and_crafting_follow_the_profile_sizes():
    cfg = load_profile("smoke").adversarial
    stages = {s.stage: s for s in adversarial_stages(cfg, "vgg16")}
    g, f = gradient_flops("vgg16", cfg.width["vgg16"]), forward_flops("vgg16", cfg.width["vgg16"])
    assert stages["training"].flops == pytest.approx(
        cfg.epochs * cfg.train_size * g + cfg.epochs * cfg.val_size * f
    )
    # Crafting is the evaluation's attacks again, on the training images instead.
    ratio = stages["crafting training images"].flops / stages["attacks on the clean model"].flops
    assert ratio == pytest.approx(cfg.adv_train_size / cfg.eval_size)
    more_steps = dataclasses.replace(
        cfg, attacks=dataclasses.replace(cfg.attacks, pgd_steps=cfg.attacks.pgd_steps + 10)
    )
    extra = {s.stage: s for s in adversarial_stages(more_steps, "vgg16")}
    assert extra["crafting training images"].flops == pytest.approx(
        stages["crafting training images"].flops + 10 * cfg.adv_train_size * g
    )


def test_a_measured_gpu_utilisation_sets_the_rate_and_its_absence_the_default():
    measured = {
        "cuda": {
            "device": "NVIDIA H200",
            "utilisation": [
                {"arch": "vgg16", "precision": "bf16", "batch_size": 512, "utilisation": 0.2},
                {"arch": "vgg16", "precision": "fp32", "batch_size": 512, "utilisation": 0.9},
            ],
        }
    }
    rate, source = sustained_rate("vgg16", "h100", measured)
    assert rate == pytest.approx(0.2 * 989e12) and "measured" in source  # bf16 rows only
    rate, source = sustained_rate("resnet50", "h100", measured)
    assert rate == pytest.approx(DEFAULT_UTILISATION * 989e12) and "not measured" in source


def test_a_plan_without_a_rate_or_for_an_unknown_device_says_what_to_do():
    with pytest.raises(PlanError, match="make bench"):
        sustained_rate("vgg16", None, {})
    with pytest.raises(PlanError, match="unknown device"):
        sustained_rate("vgg16", "tpu", {})


@pytest.mark.parametrize(
    ("profile", "device", "at_once"),
    [
        ("paper", "h100", 3),  # workers_per_gpu: three cells share the GPU
        ("smoke", "h100", 1),  # smoke's two workers are CPU workers
        ("smoke", None, 2),
    ],
)
def test_the_plan_has_every_cell_and_overlaps_start_up_as_the_grid_runs_them(
    profile, device, at_once
):
    """Start-up overlaps over the cells the grid runner starts at once on the device
    planned (``GridConfig.workers_here``): the plan divided by the CPU workers even on
    a GPU, so the paper plan assumed one cell at a time where the grid runs three."""
    rows = [{"arch": a, "tflop_per_s": 1.0} for a in ("single_layer", *ARCHITECTURES)]
    table = plan(profile, device, {"cpu": {"device": "cpu", "utilisation": rows}})
    startup = table[table["stage"] == "start-up"].set_index("experiment")
    assert load_profile(profile).grid.workers_here(1 if device else 0) == at_once
    for experiment in EXPERIMENTS:
        cells = len(load_grid(experiment, profile))
        assert startup.loc[experiment, "cells"] == cells
        assert startup.loc[experiment, "seconds"] == pytest.approx(
            cells * CELL_OVERHEAD_S / at_once
        )
    assert (table["seconds"] >= 0).all() and table["tflop"].sum() > 0


def test_the_plan_command_prints_totals_for_one_and_eight_devices(capsys):
    folder = REPO_ROOT / "benchmarks" / "results"
    assert (
        main(["plan", "--profile", "paper", "--device", "h100", "--benchmarks", str(folder)]) == 0
    )
    out = capsys.readouterr().out
    assert "total on 1 device:" in out and "total on 8 devices:" in out
    # The committed H200 report measured VGG-16's share of peak: the plan uses it.
    assert "rate for vgg16:" in out and "measured by make bench" in out


def test_the_sweep_profile_is_the_paper_profile_with_the_weaker_strengths():
    paper, sweep = load_profile("paper"), load_profile("sweep")
    assert sweep.adversarial == paper.adversarial and sweep.attribution == paper.attribution
    strengths = {c.penalty for c in load_grid("adversarial", "sweep") if c.penalty}
    assert strengths == {1e-3, 1e-4}
    assert {c.penalty for c in load_grid("adversarial", "paper") if c.penalty} == {1e-2}
    assert {c.seed for c in load_grid("adversarial", "paper")} == {0, 1, 2}


def test_a_reduced_architecture_borrows_its_familys_measured_rate_and_says_so():
    from paperlib.run.plan import sustained_rate

    reports = {"cpu": {"device": "CPU", "utilisation": [{"arch": "resnet50", "tflop_per_s": 0.2}]}}
    rate, source = sustained_rate("resnet26", None, reports)
    assert rate == pytest.approx(0.2e12) and source.startswith("assumed: resnet50's rate")
    with pytest.raises(PlanError, match="no training rate for vgg16"):
        sustained_rate("vgg16", None, reports)
