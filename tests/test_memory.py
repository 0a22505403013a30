"""The memory budget per stage (paperlib.core.memory): activation bytes per row are
measured, passes are split to fit a GPU's budget, a CPU run keeps every pass whole, and
the paper profile's cells fit three to an 80 GB GPU only because of the budget."""

from __future__ import annotations

import contextlib
import os
import queue
import signal

import pytest
import torch
from torch import nn

import paperlib.core.memory as memory
from paperlib.core.attacks import _deepfool_step, deepfool, make_attack, run_autoattack
from paperlib.core.attribution import gradcam_map, gradcam_sensitivity, occlusion_map
from paperlib.core.memory import (
    ACTIVATION_SHARE,
    ROW_BYTES,
    activation_budget,
    cell_stages,
    cells_sharing_the_gpu,
    measure_row_bytes,
    row_bytes,
    rows_per_pass,
    stage_peaks,
)
from paperlib.core.models import make_model
from paperlib.core.registry import ARCHITECTURES
from paperlib.core.settings import CELLS_PER_GPU_ENV, AttackConfig
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.workers import _pin_worker, gpu_slots

CPU = torch.device("cpu")
GB = 10**9


@contextlib.contextmanager
def rows_of_each_pass(model: nn.Module, with_gradients: list[int] | None = None):
    """The batch size of every forward pass ``model`` makes inside the block; those of
    the passes that keep a graph for a backward pass also go to ``with_gradients``."""
    seen: list[int] = []

    def record(_, args):
        seen.append(len(args[0]))
        if with_gradients is not None and torch.is_grad_enabled():
            with_gradients.append(len(args[0]))

    hook = model.register_forward_pre_hook(record)
    try:
        yield seen
    finally:
        hook.remove()


def _small_vgg() -> nn.Module:
    torch.manual_seed(0)
    return make_model("vgg16", width=0.0625).eval()


def _images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# --- measuring bytes per row -----------------------------------------------------------


def test_measured_bytes_per_row_match_a_count_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 32 * 32, 10)
    )
    image, hidden = 3 * 32 * 32 * 4, 5 * 32 * 32 * 4  # float32 bytes of one row
    cost = measure_row_bytes(net)
    # Kept for the backward pass: the conv's input, the ReLU's output, and the linear
    # layer's input, a copy, since a channels-last batch cannot be flattened in place.
    assert cost.saved == image + 2 * hidden
    # Alive at once without gradients: the images, the conv's output, the ReLU's output.
    assert cost.forward == image + 2 * hidden
    assert cost.params == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_table_holds_what_each_network_measures_at_full_width(arch):
    """The table is measured, not guessed: measuring again gives the same bytes."""
    model = make_model(arch).to(memory_format=torch.channels_last)
    assert measure_row_bytes(model) == ROW_BYTES[arch]


def test_a_network_wider_than_the_tables_is_measured_not_bounded_by_it():
    wider = make_model("mobilenet", width=1.25)
    cost = row_bytes(wider, (3, 32, 32))
    assert cost.params > ROW_BYTES["mobilenet"].params
    assert cost.saved > ROW_BYTES["mobilenet"].saved


# --- a CPU: no budget, every pass as it was ----------------------------------------------


def test_on_a_cpu_there_is_no_budget_and_every_pass_keeps_its_rows():
    """The CPU study's numbers must not change: a CPU gets no budget, and every stage's
    passes keep the rows they had before the budget existed."""
    assert activation_budget(CPU) is None
    model, images = _small_vgg(), _images(6)
    assert rows_per_pass(model, images) is None
    target = model(images).argmax(dim=1)
    with rows_of_each_pass(model) as seen:
        deepfool(model, images, target, steps=1, candidates=4)
    assert seen == [6, 6 * 4]  # the clean logits, then images x candidates in one pass
    with rows_of_each_pass(model) as seen:
        occlusion_map(model, images, 8, 4, target, perturbations_per_eval=8)
    assert max(seen) == 6 * 8  # all images, 8 of their 49 patch positions a pass
    with rows_of_each_pass(model) as seen:
        gradcam_map(model, images, target)
    assert seen == [6]
    with rows_of_each_pass(model) as seen:
        gradcam_sensitivity(model, images, target, radius=0.02, samples=3)
    assert seen == [6, 6 * 3]
    with rows_of_each_pass(model) as seen:
        make_attack("fgsm", model, AttackConfig())(images, target)
    assert seen == [6]


def _deepfool_before_the_budget(model, images, labels, steps, overshoot, candidates):
    """DeepFool's loop as it was before the budget: every active image in one pass."""
    x0 = images.detach()
    with torch.no_grad():
        logits = model(x0)
    order = logits.argsort(dim=1, descending=True)
    others = order[order != labels[:, None]].view(len(x0), -1)[:, : candidates - 1]
    classes = torch.cat([labels[:, None], others], dim=1)
    total = torch.zeros_like(x0)
    active = (logits.argmax(dim=1) == labels).nonzero().flatten()
    for _ in range(steps):
        if len(active) == 0:
            break
        x = (x0[active] + (1 + overshoot) * total[active]).clamp(0, 1)
        step, still = _deepfool_step(model, x, classes[active])
        total[active] += step
        active = active[still]
    return (x0 + (1 + overshoot) * total).clamp(0, 1).detach()


def test_deepfool_on_a_cpu_gives_what_it_gave_before_the_budget_bit_for_bit(cnn, attacked):
    x, y = attacked
    now = deepfool(cnn, x, y, steps=20, overshoot=0.02, candidates=4)
    with torch.enable_grad():
        before = _deepfool_before_the_budget(cnn, x, y, 20, 0.02, 4)
    assert not torch.equal(now, x) and torch.equal(now, before)


# --- a (mocked) GPU: passes split to fit ----------------------------------------------


def _gpu_holding(monkeypatch, rows: int, per_row: int, cells: int = 2) -> None:
    """Pretend every device is a GPU, shared by ``cells`` cells, whose budget holds
    ``rows`` rows of ``per_row`` bytes (and half a row more, which does not fit)."""
    total = int((rows + 0.5) * per_row * cells / ACTIVATION_SHARE)
    monkeypatch.setattr(memory, "device_memory", lambda device: total)
    monkeypatch.setenv(CELLS_PER_GPU_ENV, str(cells))


def test_on_a_gpu_every_stage_holds_no_more_rows_than_the_budget(monkeypatch):
    model, images = _small_vgg(), _images(12)
    target = model(images).argmax(dim=1)
    cfg = AttackConfig(pgd_steps=2, pgd_targeted=False, autoattack=["apgd-ce"], autoattack_steps=2)
    stages = {
        "deepfool": lambda: deepfool(model, images, target, steps=3, candidates=4),
        "occlusion": lambda: occlusion_map(model, images, 8, 4, target, perturbations_per_eval=16),
        "gradcam": lambda: gradcam_map(model, images, target),
        "sensitivity": lambda: gradcam_sensitivity(model, images, target, 0.02, samples=3),
        "pgd": lambda: make_attack("pgd", model, cfg)(images, target),
        "autoattack": lambda: run_autoattack(model, cfg, images, target, CPU, 8 / 255)[2],
    }
    unsplit = {name: stages[name]() for name in ("deepfool", "occlusion", "gradcam", "pgd")}
    _gpu_holding(monkeypatch, rows=10, per_row=ROW_BYTES["vgg16"].backward, cells=3)
    assert rows_per_pass(model, images) == 10
    forward_rows = rows_per_pass(model, images, backward=False)
    assert 10 < forward_rows < 12 * 16  # a pass without gradients keeps less, yet occlusion
    # (12 images x 16 positions) and every stage's passes with gradients must split
    for name, run in stages.items():
        with_gradients = []
        with rows_of_each_pass(model, with_gradients) as seen:
            split = run()
        assert max(with_gradients, default=0) <= 10, name
        assert bool(with_gradients) == (name != "occlusion"), name  # occlusion needs none
        assert max(seen) <= forward_rows, name
        if name in unsplit:  # each image's result is its own, however the images are split
            torch.testing.assert_close(split, unsplit[name], rtol=1e-4, atol=1e-5)


def test_the_budget_divides_the_gpu_among_the_cells_that_share_it(monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda device: 80 * GB)
    monkeypatch.delenv(CELLS_PER_GPU_ENV, raising=False)
    alone = activation_budget(torch.device("cuda"))
    monkeypatch.setenv(CELLS_PER_GPU_ENV, "3")
    assert alone == int(80 * GB * ACTIVATION_SHARE)
    assert activation_budget(torch.device("cuda")) == alone // 3


def test_each_grid_worker_learns_how_many_cells_share_its_gpu(monkeypatch):
    assert gpu_slots(3, ["0"]) == [("0", 3)] * 3
    assert gpu_slots(3, ["0", "1"]) == [("0", 2), ("1", 1), ("0", 2)]
    assert gpu_slots(2, []) == [(None, 2), (None, 2)]
    for name in ("CUDA_VISIBLE_DEVICES", CELLS_PER_GPU_ENV, "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "restored after the test")  # the worker sets them
    devices = queue.Queue()
    devices.put(gpu_slots(3, ["0", "1"])[1])
    # The worker's SIGINT handler is for a worker: this process keeps its own.
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    _pin_worker(devices, threads=1)  # what each worker of the grid's pool runs first
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1" and cells_sharing_the_gpu() == 1
    devices.put(gpu_slots(3, ["0", "1"])[0])
    _pin_worker(devices, threads=1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0" and cells_sharing_the_gpu() == 2
    monkeypatch.delenv(CELLS_PER_GPU_ENV)
    assert cells_sharing_the_gpu() == 1  # a cell run on its own has the GPU to itself


# --- the paper profile on one 80 GB GPU ------------------------------------------------


def test_the_paper_profiles_cells_fit_their_gpu_only_with_the_budget(monkeypatch):
    """Peak bytes of each stage of an adversarial and an attribution cell, from the
    measured bytes per row; ``workers_per_gpu`` cells of the largest, each at its peak,
    must fit in 80 GB. Without the budget DeepFool alone overflows the GPU."""
    profile = load_profile("paper")
    cells = profile.grid.workers_per_gpu
    rows = {stage.name: stage.rows for stage in cell_stages(profile)}
    assert rows["DeepFool (also crafting)"] == 500 * 10
    assert rows["occlusion"] == 250 * 64 and rows["Grad-CAM sensitivity"] == 250 * 10
    monkeypatch.setattr(memory, "device_memory", lambda device: 80 * GB)
    monkeypatch.setenv(CELLS_PER_GPU_ENV, str(cells))
    budget = activation_budget(torch.device("cuda"))
    capped = {arch: stage_peaks(profile, arch, budget) for arch in ARCHITECTURES}
    uncapped = {arch: stage_peaks(profile, arch, None) for arch in ARCHITECTURES}
    assert cells * max(max(peaks.values()) for peaks in capped.values()) <= 80 * GB
    assert uncapped["resnet50"]["DeepFool (also crafting)"] > 80 * GB
    assert cells * max(max(peaks.values()) for peaks in uncapped.values()) > 80 * GB


# --- a CPU machine's memory ----------------------------------------------------------


def test_a_cells_peak_on_a_cpu_is_its_largest_unsplit_pass_at_the_profiles_width():
    """ResNet-26's study cell peaks in DeepFool (250 images x 10 candidates, each row
    with its graph): 12 GB by this count, 10 GB measured resident when one died of it."""
    study = load_profile("study")
    stage, peak = memory.cpu_cell_peak(study, "adversarial", "resnet26")
    assert stage == "DeepFool (also crafting)"
    assert 9 * GB < peak < 14 * GB
    stage, explained = memory.cpu_cell_peak(study, "attribution", "resnet26")
    assert stage == "Grad-CAM sensitivity" and explained < peak / 3
    _, vgg = memory.cpu_cell_peak(study, "adversarial", "vgg16")
    assert 4 < peak / vgg < 8  # at the same width, ResNet-26 keeps 6 times VGG-16's bytes


@pytest.mark.parametrize(
    ("machine_gib", "chosen", "expected"),
    [
        (64, False, 2),  # both fit
        (16, False, 1),  # the profile's two do not: one, with a note
        (16, True, "Run with --workers 1"),  # the user's two do not: an error
        (8, False, "run it on a GPU"),  # not even one cell fits
    ],
)
def test_grid_workers_are_fitted_to_a_cpu_machines_memory(
    monkeypatch, capsys, machine_gib, chosen, expected
):
    from paperlib.core.settings import ConfigError
    from paperlib.run import workers

    monkeypatch.setattr(workers, "machine_memory", lambda: machine_gib << 30)
    study = load_profile("study")
    cells = [c for c in load_grid("adversarial", "study") if c.arch == "resnet26"]
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected) as error:
            workers.workers_that_fit(study, "adversarial", cells, 2, chosen)
        assert "resnet26" in str(error.value) and "DeepFool" in str(error.value)
        return
    assert workers.workers_that_fit(study, "adversarial", cells, 2, chosen) == expected
    assert ("not the profile's 2" in capsys.readouterr().out) == (expected < 2)
    # VGG-16's cells fit two to the smaller machine, and experiment 1 is never checked.
    vgg = [c for c in load_grid("adversarial", "study") if c.arch == "vgg16"]
    assert workers.workers_that_fit(study, "adversarial", vgg, 2, True) == 2
    assert workers.workers_that_fit(study, "density", load_grid("density", "study"), 2, True) == 2


def test_a_grid_whose_cells_cannot_fit_stops_before_it_starts_anything(smoke_env, monkeypatch):
    from paperlib.core.settings import ConfigError
    from paperlib.run import grid, workers

    monkeypatch.setattr(workers, "machine_memory", lambda: 16 << 30)
    monkeypatch.setattr(grid, "visible_gpus", lambda: [])
    cells = ["resnet26-base-s0", "resnet26-base-s1"]
    with pytest.raises(ConfigError, match="--workers 1"):
        grid.run_grid("study", "adversarial", only=cells, workers=2, progress=False)
    assert not any(smoke_env.rglob("*"))  # no claim, result or run was made
