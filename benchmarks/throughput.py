"""How fast our training loop, attacks and attributions run, and how much of the
device's peak that is: the numbers a cost model needs.

Every measurement warms up first (cuDNN picks its kernels on the first call of each
shape), then repeats at least five times; we report the median and the spread.
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch

from paperlib.core import accel
from paperlib.core.attacks import autoattack_component, standard_pgd
from paperlib.core.attribution import gradcam_map, occlusion_map
from paperlib.core.cost import bf16_peak, forward_flops, gradient_flops
from paperlib.core.models import SingleLayerCNN, make_model
from paperlib.core.registry import ARCHITECTURES
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import density_objective, penalized_cross_entropy, seed_everything, train

REPEATS = 5


def repeated(fn, repeats: int = REPEATS) -> dict[str, float]:
    """Seconds per call of ``fn`` after one warm-up call: median, min and max."""
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def _rates(timing: dict, work: float, flops_per_unit: float, peak: float | None) -> dict:
    """Units per second and achieved FLOP/s from a timing of ``work`` units."""
    rate = work / timing["median_s"]
    row = {
        **timing,
        "per_s": rate,
        "per_s_spread": [work / timing["max_s"], work / timing["min_s"]],
        "tflop_per_s": rate * flops_per_unit / 1e12,
    }
    if peak:
        row["utilisation"] = rate * flops_per_unit / peak
        # Whether float32 convolutions ran in TF32: the plan takes such a float32 rate
        # for an upper bound only (the fast path switches TF32 off since fd189bf).
        row["tf32"] = torch.backends.cudnn.allow_tf32
    return row


def _precisions(device: torch.device):
    """bf16 (the fast path) and float32 on CUDA; float32 alone on a CPU."""
    if device.type != "cuda":
        return [("fp32", accel.full_precision)]
    return [("bf16", contextlib.nullcontext), ("fp32", accel.full_precision)]


def bench_training_utilisation(
    device: torch.device, width: float, n: int, batch_sizes: list[int], repeats: int = REPEATS
) -> list[dict]:
    """One epoch of our ``train`` (crop-and-flip, SGD one-cycle) on ``n`` random
    images per architecture, batch size and precision: images/s, TFLOP/s and the
    share of the bf16 peak."""
    peak = bf16_peak(torch.cuda.get_device_name()) if device.type == "cuda" else None
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (n,), device=device)
    rows = []
    for arch in (*ARCHITECTURES, "single_layer"):
        # Experiment 1's model trains with its own recipe: Adam, no augmentation.
        density = arch == "single_layer"
        for batch_size in batch_sizes:
            for precision, context in _precisions(device):
                seed_everything(0)
                model = SingleLayerCNN() if density else make_model(arch, width)
                objective = (
                    density_objective(0.0)
                    if density
                    else penalized_cross_entropy(make_penalty("base", 0.0))
                )

                def epoch(
                    model=model,
                    batch_size=batch_size,
                    context=context,
                    objective=objective,
                    density=density,
                ):
                    with context():
                        train(
                            model,
                            (images, labels),
                            (images[:256], labels[:256]),
                            objective=objective,
                            epochs=1,
                            batch_size=batch_size,
                            lr=1e-3 if density else 0.1,
                            optimizer="adam" if density else "sgd",
                            seed=0,
                            device=device,
                            augment=not density,
                            progress=False,
                        )

                timing = repeated(epoch, repeats)
                rows.append(
                    {
                        "arch": arch,
                        "width": 1.0 if density else width,
                        "batch_size": batch_size,
                        "precision": precision,
                        "images": n,
                        **_rates(timing, n, gradient_flops(arch, 1.0 if density else width), peak),
                    }
                )
                print(f"  training {rows[-1]}", flush=True)
    return rows


def bench_attack_throughput(
    device: torch.device, width: float, n: int, repeats: int = REPEATS
) -> list[dict]:
    """Image-steps per second of the attacks and attributions that dominate a GPU grid,
    on untrained models (the cost of a step does not depend on the weights)."""
    peak = bf16_peak(torch.cuda.get_device_name()) if device.type == "cuda" else None
    images = torch.rand(n, 3, 32, 32, device=device)
    steps = 10
    rows = []
    for arch in ARCHITECTURES:
        seed_everything(0)
        model = accel.place(make_model(arch, width), device).eval()
        x = accel.as_input(images)
        # The model's own predictions as labels: every image starts correctly
        # classified, so APGD (which skips misclassified images) attacks them all.
        with torch.no_grad():
            labels = model(x).argmax(dim=1)
        cases = _attack_cases(model, x, labels, steps, arch, width)
        for name, (call, images_per_call, per_image, flops) in cases.items():
            for precision, context in _precisions(device):

                def under_precision(call=call, context=context):
                    with context(), accel.autocast(device):
                        call()

                timing = repeated(under_precision, repeats)
                rows.append(
                    {
                        "arch": arch,
                        "width": width,
                        "method": name,
                        "precision": precision,
                        "images": images_per_call,
                        "image_steps_per_call": images_per_call * per_image,
                        **_rates(timing, images_per_call * per_image, flops, peak),
                    }
                )
                print(f"  attack {rows[-1]}", flush=True)
    return rows


def _attack_cases(model, x, labels, steps, arch, width) -> dict:
    """name -> (call, images per call, image-steps per image, FLOPs per image-step)."""
    grad, fwd = gradient_flops(arch, width), forward_flops(arch, width)
    few = x[: max(1, len(x) // 10)]  # attributions cost more per image: fewer of them
    return {
        "pgd": (lambda: standard_pgd(model, 8 / 255, steps, 1)(x, labels), len(x), steps, grad),
        "apgd-ce": (
            lambda: autoattack_component("apgd-ce", model, 8 / 255, steps, 0)(x, labels),
            len(x),
            steps,
            grad,
        ),
        "gradcam": (lambda: gradcam_map(model, few), len(few), 1, grad),
        # 15 x 15 patch positions at patch 4, stride 2, plus the unoccluded pass
        "occlusion": (
            lambda: occlusion_map(model, few, 4, 2, perturbations_per_eval=64),
            len(few),
            226,
            fwd,
        ),
    }
