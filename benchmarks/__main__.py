"""Measure our fast paths against plain baselines, in one run, on whatever device is here.

Each section times our implementation and a straightforward baseline on the same
inputs (the median of five runs after a warm-up run; ``--quick`` runs once, to check
the script) and prints the ratio. Speed is checked here, never in timed tests. Results go
to ``benchmarks/results/<device>.json`` with the hardware they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch
import torchattacks
from captum.attr import Occlusion
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from benchmarks.compiled import STUDY_ARCHS, bench_compile
from benchmarks.throughput import (
    REPEATS,
    bench_attack_throughput,
    bench_training_utilisation,
    repeated,
)
from paperlib.core.accel import as_input
from paperlib.core.attacks import deepfool
from paperlib.core.attribution import occlusion_map
from paperlib.core.data import synthetic_cifar10
from paperlib.core.models import make_model
from paperlib.core.registry import ARCHITECTURES
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import default_device, penalized_cross_entropy, seed_everything, train
from paperlib.run.provenance import device_description, package_versions
from paperlib.run.store import write_json

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("training", "deepfool", "occlusion", "utilisation", "attacks", "compile")


class PILImages(Dataset):
    """The usual torchvision pipeline: PIL images and per-item transforms (for training,
    the same crop-and-flip augmentation as ours), batched by a DataLoader."""

    def __init__(self, images, labels, augment: bool):
        self.images = [TF.to_pil_image(x) for x in images]
        self.labels = labels
        steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
        self.transform = T.Compose([*steps, T.ToTensor()])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def baseline_epoch(model, loader, val_loader, device):
    """One epoch and a validation pass, as a typical training script writes them."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the usual per-step logging sync
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            x, y = x.to(device), y.to(device)
            torch.nn.functional.cross_entropy(model(x), y).item()


def bench_training(data, width: float, device, n: int, repeats: int) -> list[dict]:
    """One epoch of crop-and-flip training per architecture, ours against the baseline
    (the median of ``repeats`` epochs after a warm-up one, each)."""
    images, labels = data.train_images[:n], data.train_labels[:n]
    # A GPU baseline gets the loader workers a GPU user would give it; on a small CPU
    # machine, workers would only take cores away from the model.
    loader_workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    rows = []
    for arch in ARCHITECTURES:
        seed_everything(0)
        ours_model = make_model(arch, width).to(device)
        objective = penalized_cross_entropy(make_penalty("base", 0.0))
        ours = repeated(
            lambda m=ours_model, objective=objective: train(
                m,
                (images, labels),
                (images[:256], labels[:256]),
                objective=objective,
                epochs=1,
                batch_size=128,
                lr=1e-3,
                seed=0,
                device=device,
                augment=True,
                progress=False,
            ),
            repeats,
        )["median_s"]
        seed_everything(0)
        base_model = make_model(arch, width).to(device)
        loader, val_loader = (
            DataLoader(
                PILImages(x, y, augment=augment),
                batch_size=batch,
                shuffle=augment,
                num_workers=loader_workers,
                pin_memory=device.type == "cuda",
            )
            for x, y, augment, batch in (
                (images, labels, True, 128),
                (images[:256], labels[:256], False, 1000),
            )
        )
        base = repeated(
            lambda m=base_model, a=loader, b=val_loader: baseline_epoch(m, a, b, device), repeats
        )["median_s"]
        rows.append(
            {
                "arch": arch,
                "width": width,
                "images": n,
                "baseline_loader_workers": loader_workers,
                "ours_img_per_s": n / ours,
                "baseline_img_per_s": n / base,
                "speedup": base / ours,
            }
        )
    return rows


def trained_model(data, device):
    seed_everything(0)
    model = make_model("vgg16", 0.125).to(device)
    objective = penalized_cross_entropy(make_penalty("base", 0.0))
    train(
        model,
        (data.train_images[:2000], data.train_labels[:2000]),
        (data.test_images[:200], data.test_labels[:200]),
        objective=objective,
        epochs=2,
        batch_size=64,
        lr=1e-3,
        seed=0,
        device=device,
        progress=False,
    )
    return model.eval()


def success_rate(model, adversarial, images, labels) -> float:
    with torch.no_grad():
        right = model(images).argmax(1) == labels
        fooled = model(adversarial).argmax(1) != labels
    return fooled[right].float().mean().item()


def bench_deepfool(model, images, labels, repeats: int) -> dict:
    """Our batched DeepFool against torchattacks' (median seconds of ``repeats`` runs after
    a warm-up one), and how many correctly classified images each fools."""
    ours_attack = lambda: deepfool(model, images, labels, steps=50, overshoot=0.02)  # noqa: E731
    theirs_attack = torchattacks.DeepFool(model, steps=50, overshoot=0.02)
    ours = repeated(ours_attack, repeats)["median_s"]
    theirs = repeated(lambda: theirs_attack(images, labels), repeats)["median_s"]
    adv, adv_ta = ours_attack(), theirs_attack(images, labels)
    return {
        "images": len(images),
        "ours_s": ours,
        "torchattacks_s": theirs,
        "speedup": theirs / ours,
        "ours_success": success_rate(model, adv, images, labels),
        "torchattacks_success": success_rate(model, adv_ta, images, labels),
    }


def bench_occlusion(model, images, repeats: int) -> dict:
    """Batched occlusion against captum's image by image (median of ``repeats`` runs)."""
    target = model(images).argmax(1)
    ours = repeated(
        lambda: occlusion_map(model, images, 4, 2, target=target, perturbations_per_eval=64),
        repeats,
    )["median_s"]
    occlusion = Occlusion(model)
    per_image = repeated(
        lambda: [
            occlusion.attribute(
                x[None],
                sliding_window_shapes=(3, 4, 4),
                strides=(3, 2, 2),
                baselines=0.5,
                target=int(t),
                perturbations_per_eval=1,
            )
            for x, t in zip(images, target, strict=True)
        ],
        repeats,
    )["median_s"]
    return {
        "images": len(images),
        "ours_s": ours,
        "captum_per_image_s": per_image,
        "speedup": per_image / ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON report")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="what to measure (default: everything)",
    )
    args = parser.parse_args()
    device = default_device()
    # --quick checks the script, not speed: the smoke profile's width and few images.
    n = 128 if args.quick else 2048
    # Full width on a GPU; on a CPU the widths our cpu profile can afford.
    width = 0.0625 if args.quick else 1.0 if device.type == "cuda" else 0.25
    data = synthetic_cifar10(max(n, 2000), 400, seed=0)
    report = {
        "device": device_description(device),
        "machine": platform.machine(),
        "packages": package_versions(),
        "quick": args.quick,
    }
    print(f"benchmarks on {report['device']}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = "cuda" if device.type == "cuda" else "cpu"
    path = args.out / f"{name}{'-quick' if args.quick else ''}.json"
    if set(args.sections) != set(SECTIONS) and path.exists():
        # A run of some sections updates them in the report of this device, keeping the rest.
        report = json.loads(path.read_text()) | report
    big = device.type == "cuda" and not args.quick
    repeats = 1 if args.quick else REPEATS  # --quick checks the script, not speed
    report["repeats"] = repeats
    for section in args.sections:
        if section == "training":
            report[section] = bench_training(data, width, device, n, repeats)
        elif section == "deepfool":
            inputs = _trained_inputs(data, device, args.quick, 64)
            report[section] = bench_deepfool(*inputs, repeats)
        elif section == "occlusion":
            model, images, _ = _trained_inputs(data, device, args.quick, 16)
            report[section] = bench_occlusion(model, images, repeats)
        elif section == "utilisation":
            report[section] = bench_training_utilisation(
                device,
                width,
                n=8192 if big else 256,
                batch_sizes=[128, 512] if big else [64],
                repeats=repeats,
            )
        elif section == "compile":
            # Compiling costs a minute per model on a CPU: --quick compiles one.
            archs = STUDY_ARCHS[:1] if args.quick else STUDY_ARCHS
            report[section] = bench_compile(
                device, width, n=128 if args.quick else 1024, repeats=repeats, archs=archs
            )
        elif section == "attacks":
            report[section] = bench_attack_throughput(
                device, width, n=500 if big else 16, repeats=repeats
            )
        _print_section(section, report[section])
        write_json(path, report)  # after every section: a run cut short keeps what finished
    print(f"\nwrote {path}")


def _trained_inputs(data, device, quick: bool, n: int):
    """A small trained model and ``n`` test images (fewer with ``quick``) with labels."""
    model = trained_model(data, device)
    images = as_input(data.test_images[: n // 4 if quick else n], device)
    return model, images, data.test_labels[: len(images)].to(device)


def _print_section(name: str, rows) -> None:
    print(f"\n{name}")
    for row in rows if isinstance(rows, list) else [rows]:
        print(
            "  "
            + ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            )
        )


if __name__ == "__main__":
    main()
