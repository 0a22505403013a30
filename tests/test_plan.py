"""The cost model behind `make plan`: stage counts by hand, rates, and the command."""

import dataclasses

import pytest

from paperlib.__main__ import main
from paperlib.core.cost import FP32_PEAK, forward_flops, gradient_flops, layer_counts
from paperlib.core.registry import ARCHITECTURES, EXPERIMENTS
from paperlib.core.settings import DensityConfig
from paperlib.run.plan import (
    AUTOTUNE_S,
    CELL_OVERHEAD_S,
    LAUNCH_S,
    load_recipes,
    load_reports,
    plan,
    plan_inputs,
)
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.rates import DEFAULT_UTILISATION, FP32_UTILISATION, PlanError, stage_rate
from paperlib.run.stages import (
    DEEPFOOL_STEPS,
    KERNELS_PER_TENSOR,
    adversarial_stages,
    density_stages,
)
from paperlib.run.store import REPO_ROOT

COMMITTED = load_reports(REPO_ROOT / "benchmarks" / "results")  # one H200 report, one CPU
RECIPES = load_recipes(REPO_ROOT / "benchmarks" / "results")  # VGG-16 and MobileNet only


def _by_stage(stages):
    """Stages by (name, precision); autotuning and the penalty's kernels by name."""
    return {s.stage if s.fixed else (s.stage, s.precision): s for s in stages}


def test_density_stages_count_every_pass_of_a_cell():
    cfg = DensityConfig(train_size=100, val_size=10, test_size=20, epochs=2)
    training, evaluation, _ = density_stages(cfg)
    f = forward_flops("single_layer")
    assert training.flops == 2 * 100 * 3 * f + 2 * 10 * f
    assert evaluation.flops == (2 * 20 + 100) * f


def test_small_steps_on_a_gpu_are_priced_by_their_count_and_on_a_cpu_by_their_arithmetic():
    """A paper density cell does under a second of arithmetic in 3,520 steps, yet took
    18.4-20.0 s on an H200: on a GPU its time is set by the steps, whatever the rate; on
    a CPU by the arithmetic, so half the rate takes twice as long."""
    cfg = load_profile("paper").density
    (training,) = [s for s in density_stages(cfg) if s.stage == "training"]
    assert training.steps == cfg.epochs * -(-cfg.train_size // cfg.batch_size) == 3520
    cells = len(load_grid("density", "paper"))

    def seconds(device, tflop_per_s):
        rows = [
            {"arch": a, "precision": p, "tflop_per_s": tflop_per_s, "tf32": False}
            for a in ("single_layer", *ARCHITECTURES)
            for p in ("bf16", "fp32")
        ]
        name = "NVIDIA H100 80GB HBM3" if device == "h100" else "cpu"
        reports = {device or "cpu": {"device": name, "utilisation": rows, "attacks": []}}
        table = plan("paper", device, reports).set_index(["experiment", "stage"])
        return table.loc[("density", "training"), "seconds"]

    on_gpu = seconds("h100", 1.0), seconds("h100", 1000.0)
    assert on_gpu[0] == on_gpu[1]
    assert 18.4 / 2 <= on_gpu[0] / cells <= 20.0  # the measured cell, start-up included
    on_cpu = seconds(None, 1.0), seconds(None, 0.5)
    assert on_cpu[0] == pytest.approx(cells * training.flops / 1e12)
    assert on_cpu[1] == pytest.approx(2 * on_cpu[0])


def test_adversarial_training_and_crafting_follow_the_profile_sizes():
    cfg = load_profile("smoke").adversarial
    stages = _by_stage(adversarial_stages(cfg, "vgg16"))
    g, f = gradient_flops("vgg16", cfg.width["vgg16"]), forward_flops("vgg16", cfg.width["vgg16"])
    assert stages["training", "bf16"].flops == pytest.approx(
        cfg.epochs * cfg.train_size * g + cfg.epochs * cfg.val_size * f
    )
    # Crafting is the evaluation's attacks again, on the training images instead.
    for precision in ("bf16", "fp32"):
        ratio = (
            stages["crafting training images", precision].flops
            / stages["attacks on the clean model", precision].flops
        )
        assert ratio == pytest.approx(cfg.adv_train_size / cfg.eval_size)
    more_steps = dataclasses.replace(
        cfg, attacks=dataclasses.replace(cfg.attacks, pgd_steps=cfg.attacks.pgd_steps + 10)
    )
    extra = _by_stage(adversarial_stages(more_steps, "vgg16"))
    assert extra["crafting training images", "bf16"].flops == pytest.approx(
        stages["crafting training images", "bf16"].flops + 10 * cfg.adv_train_size * g
    )


def test_deepfool_costs_a_gradient_pass_per_candidate_row_and_autoattack_runs_per_radius():
    """Our DeepFool runs every candidate class as a row of the batch, forward and
    backward; the plan priced one forward pass and one input gradient per class, as
    ART's does, about 30 % less. AutoAttack runs at every endpoint radius, not once."""
    cfg = load_profile("paper").adversarial
    stages = _by_stage(adversarial_stages(cfg, "vgg16"))
    g, f = gradient_flops("vgg16"), forward_flops("vgg16")
    k = cfg.attacks.deepfool_candidates
    assert stages["attacks on the clean model", "fp32"].flops == pytest.approx(
        cfg.eval_size * (DEEPFOOL_STEPS * k * g + f)
    )
    radii = len({*cfg.endpoint_eps, cfg.standard_eps})
    once = dataclasses.replace(cfg, endpoint_eps=[cfg.standard_eps])
    assert radii == 3
    assert stages["AutoAttack", "bf16"].flops == pytest.approx(
        radii * _by_stage(adversarial_stages(once, "vgg16"))["AutoAttack", "bf16"].flops
    )
    # the three adversarial fine-tunes and the placebo, on clean plus crafted images
    mixed = 2 * cfg.adv_train_size
    assert stages["fine-tuning", "bf16"].gradient == 4 * cfg.finetune_epochs * mixed


def test_float32_stages_are_priced_at_float32_rates():
    """DeepFool, occlusion, Grad-CAM and the verdict passes run in float32 without TF32
    on CUDA; the plan priced them at the bf16 training rate. With an H100 report whose
    float32 rows were measured without TF32, each float32 stage takes its FLOPs over the
    float32 rate, and such a stage is labelled measured."""
    report = {"device": "NVIDIA H100 80GB HBM3", "utilisation": [], "attacks": []}
    for arch in ("single_layer", *ARCHITECTURES):
        for precision, tflop in (("bf16", 100.0), ("fp32", 10.0)):
            row = {"arch": arch, "precision": precision, "tflop_per_s": tflop, "tf32": False}
            report["utilisation"].append(row | {"batch_size": 512})
            methods = ("pgd", "apgd-ce", "occlusion", "gradcam")
            report["attacks"] += [row | {"method": m} for m in methods]
    table = plan("paper", "h100", {"h100": report})
    table = table.set_index(["experiment", "stage", "precision"])
    fp32 = [("attribution", "occlusion"), ("attribution", "Grad-CAM")] + [
        ("adversarial", stage)
        for stage in ("attacks on the clean model", "crafting training images", "verdicts")
    ]
    for stage in fp32:
        row = table.loc[(*stage, "fp32")]
        assert row["seconds"] == pytest.approx(row["tflop"] / 10.0)
    # occlusion rests on its rate and the counted FLOPs alone, both measured here
    assert table.loc[("attribution", "occlusion", "fp32"), "label"] == "measured"
    searching = table.loc[("adversarial", "crafting training images", "bf16")]
    assert searching["seconds"] == pytest.approx(searching["tflop"] / 100.0)


def test_every_stage_and_input_of_the_paper_plan_for_an_h100_is_labelled():
    """`make plan PROFILE=paper DEVICE=h100` names every figure it uses as measured
    (where) or assumed (why), and labels a stage measured only if all its inputs are."""
    table = plan("paper", "h100", COMMITTED, RECIPES)
    inputs = plan_inputs("paper", "h100", COMMITTED, RECIPES).set_index("input")
    assert set(inputs["label"]) <= {"measured", "assumed"}
    assert inputs["basis"].str.len().min() > 20
    assert set(table["label"]) <= {"measured", "assumed"}
    for row in table.itertuples():
        assert row.inputs and set(row.inputs) <= set(inputs.index)
        measured = all(inputs.loc[name, "label"] == "measured" for name in row.inputs)
        assert row.label == ("measured" if measured else "assumed")
    # the costs that are not arithmetic are in the plan, as assumptions
    stages = set(table["stage"])
    assert {"autotuning", "penalty kernels", "verdicts"} <= stages
    assert inputs.loc["autotuning", "label"] == inputs.loc["penalty kernels", "label"] == "assumed"
    # ResNet-50's 30 epochs were never probed; VGG-16's and MobileNet's were, on an H200
    assert inputs.loc["recipe: resnet50", "label"] == "assumed"
    assert inputs.loc["recipe: vgg16", "label"] == inputs.loc["recipe: mobilenet", "label"]
    assert inputs.loc["recipe: vgg16", "label"] == "measured"


def test_an_h200_measurement_is_never_passed_off_as_an_h100_one():
    """The committed GPU report is an H200's. For an H100 every rate taken from it is
    assumed, scaled by the memory-bandwidth ratio and says so; for an H200 the same row
    is measured, unscaled."""
    h100 = plan_inputs("paper", "h100", COMMITTED).set_index("input")
    rates = h100[h100.index.str.startswith("rate:")]
    from_h200 = rates[rates["basis"].str.contains("H200")]
    assert len(from_h200) > 0 and (rates["label"] == "assumed").all()
    assert from_h200["basis"].str.contains("memory-bandwidth ratio").all()
    (row,) = [
        r
        for r in COMMITTED["cuda"]["utilisation"]
        if (r["arch"], r["precision"], r["batch_size"]) == ("resnet50", "bf16", 512)
    ]
    on_h100 = stage_rate("resnet50", "training", "bf16", "h100", COMMITTED, 512)
    on_h200 = stage_rate("resnet50", "training", "bf16", "h200", COMMITTED, 512)
    assert on_h200.label == "measured" and on_h200.flop_per_s == pytest.approx(
        row["tflop_per_s"] * 1e12
    )
    assert on_h100.label == "assumed"
    assert on_h100.flop_per_s == pytest.approx(row["tflop_per_s"] * 1e12 * 3.35 / 4.8)


def test_float32_measured_with_tf32_is_capped_at_the_float32_peak():
    """Rows without a ``tf32`` field were measured while cuDNN ran float32 convolutions
    in TF32; without TF32 they cannot beat the CUDA cores' float32 peak."""
    reports = {
        "cuda": {
            "device": "NVIDIA H200",
            "attacks": [
                {"arch": "vgg16", "method": "occlusion", "precision": "fp32", "tflop_per_s": 120.0}
            ],
        }
    }
    rate = stage_rate("vgg16", "occlusion", "fp32", "h200", reports)
    assert rate.label == "assumed" and "TF32" in rate.basis
    assert rate.flop_per_s == pytest.approx(FP32_UTILISATION * FP32_PEAK["h200"])
    reports["cuda"]["attacks"][0]["tf32"] = False
    assert stage_rate("vgg16", "occlusion", "fp32", "h200", reports).label == "measured"


def test_autotuning_and_the_penalty_kernels_are_priced_per_event_on_a_gpu_only():
    cfg = load_profile("paper").adversarial
    elastic = _by_stage(adversarial_stages(cfg, "resnet50", "elastic"))
    base = _by_stage(adversarial_stages(cfg, "resnet50", "base"))
    convolutions, tensors = layer_counts("resnet50")
    steps = elastic["training", "bf16"].steps + elastic["fine-tuning", "bf16"].steps
    assert elastic["penalty kernels"].launches == steps * tensors * 15
    assert KERNELS_PER_TENSOR["elastic"] == 15 and base["penalty kernels"].launches == 0
    # batch shapes: 512 and the short last 456 (45,000 images), validation's 1,000,
    # fine-tuning's short last 272 (10,000 images)
    assert elastic["autotuning"].tuned == convolutions * 4
    gpu = plan("paper", "h100", COMMITTED).set_index(["experiment", "stage"])
    cells = load_grid("adversarial", "paper")
    tuned = sum(layer_counts(c.arch)[0] * 4 for c in cells)
    assert gpu.loc[("adversarial", "autotuning"), "seconds"] == pytest.approx(tuned * AUTOTUNE_S)
    launches = sum(
        _by_stage(adversarial_stages(cfg, c.arch, c.regularizer))["penalty kernels"].launches
        for c in cells
    )
    assert gpu.loc[("adversarial", "penalty kernels"), "seconds"] == pytest.approx(
        launches * LAUNCH_S
    )
    rows = [{"arch": a, "tflop_per_s": 1.0} for a in ("single_layer", *ARCHITECTURES)]
    on_cpu = plan("paper", None, {"cpu": {"device": "cpu", "utilisation": rows}})
    assert not {"autotuning", "penalty kernels"} & set(on_cpu["stage"])


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
    # The committed H200 report measured VGG-16's training: the H100 plan uses it, scaled
    # and labelled assumed, and never calls it measured.
    assert "assumed: rate: vgg16 training bf16" in out and "make bench on NVIDIA H200" in out
    assert "measured: rate:" not in out


def test_the_sweep_profile_is_the_paper_profile_with_the_weaker_strengths():
    paper, sweep = load_profile("paper"), load_profile("sweep")
    assert sweep.adversarial == paper.adversarial and sweep.attribution == paper.attribution
    strengths = {c.penalty for c in load_grid("adversarial", "sweep") if c.penalty}
    assert strengths == {1e-3, 1e-4}
    assert {c.penalty for c in load_grid("adversarial", "paper") if c.penalty} == {1e-2}
    assert {c.seed for c in load_grid("adversarial", "paper")} == {0, 1, 2}


def test_a_reduced_architecture_borrows_its_familys_measured_rate_and_says_so():
    reports = {"cpu": {"device": "CPU", "utilisation": [{"arch": "resnet50", "tflop_per_s": 0.2}]}}
    rate = stage_rate("resnet26", "training", "bf16", None, reports)
    assert rate.flop_per_s == pytest.approx(0.2e12) and rate.label == "assumed"
    assert "resnet26 not measured: resnet50's rate" in rate.basis
    with pytest.raises(PlanError, match="no training rate for vgg16"):
        stage_rate("vgg16", "training", "bf16", None, reports)


def test_a_measured_gpu_rate_of_the_stages_precision_sets_it_and_its_absence_the_default():
    measured = {
        "cuda": {
            "device": "NVIDIA H100 80GB HBM3",
            "utilisation": [
                {"arch": "vgg16", "precision": "bf16", "batch_size": 512, "tflop_per_s": 200.0},
                {"arch": "vgg16", "precision": "fp32", "batch_size": 512, "tflop_per_s": 900.0},
            ],
        }
    }
    rate = stage_rate("vgg16", "training", "bf16", "h100", measured, 512)
    assert rate.flop_per_s == pytest.approx(200e12) and rate.label == "measured"
    rate = stage_rate("resnet50", "training", "bf16", "h100", measured, 512)
    assert rate.flop_per_s == pytest.approx(DEFAULT_UTILISATION * 989e12)
    assert rate.label == "assumed" and "nothing measured" in rate.basis


def test_a_plan_without_a_rate_or_for_an_unknown_device_says_what_to_do():
    with pytest.raises(PlanError, match="make bench"):
        stage_rate("vgg16", "training", "bf16", None, {})
    with pytest.raises(PlanError, match="unknown device"):
        stage_rate("vgg16", "training", "bf16", "tpu", {})
