"""How many epochs each architecture needs at full scale: the evidence behind the
``paper`` profile's training length.

Trains every base model (no penalty) of experiment 2 on the profile's full splits
with the profile's recipe (SGD with Nesterov momentum, one-cycle schedule, crop and
flip), except for the batch size, learning rate and number of epochs given here, and
records validation accuracy after every epoch, test accuracy at the end and the wall
time. The epochs per architecture follow from a time budget and that architecture's
measured training speed, so one run fits whatever device it is given.

    python -m benchmarks.recipe --profile paper --budget-s 60 --batch-size 512 --lr 0.2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from paperlib.core.models import make_model
from paperlib.core.registry import ARCHITECTURES
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import (
    default_device,
    evaluate,
    penalized_cross_entropy,
    seed_everything,
    train,
)
from paperlib.run.profiles import load_profile
from paperlib.run.provenance import device_description, package_versions
from paperlib.run.splits import load_profile_data, make_splits
from paperlib.run.store import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def epochs_for_budget(seconds_per_epoch: float, budget_s: float, most: int) -> int:
    """The most whole epochs that fit ``budget_s``, at least 1 and at most ``most``."""
    return max(1, min(most, int(budget_s // seconds_per_epoch)))


def probe(arch, splits, cfg, *, batch_size, lr, budget_s, max_epochs, device) -> dict:
    objective = penalized_cross_entropy(make_penalty("base", 0.0))
    common = dict(
        objective=objective,
        batch_size=batch_size,
        optimizer=cfg.optimizer,
        seed=0,
        device=device,
        augment=cfg.augment,
        progress=False,
    )
    # Time one epoch on a throwaway model, after a first epoch that warms cuDNN up (it
    # picks its kernels on the first batch of each shape), then train for real.
    seed_everything(0)
    throwaway = make_model(arch, cfg.width[arch])
    train(throwaway, splits.train, splits.val, epochs=1, lr=lr, **common)
    start = time.perf_counter()
    train(throwaway, splits.train, splits.val, epochs=1, lr=lr, **common)
    epoch_s = time.perf_counter() - start
    epochs = epochs_for_budget(epoch_s, budget_s, max_epochs)
    seed_everything(0)
    model = make_model(arch, cfg.width[arch])
    start = time.perf_counter()
    history = train(model, splits.train, splits.val, epochs=epochs, lr=lr, **common)
    seconds = time.perf_counter() - start
    _, test_acc = evaluate(model, splits.test, objective)
    row = {
        "arch": arch,
        "width": cfg.width[arch],
        "batch_size": batch_size,
        "lr": lr,
        "epochs": epochs,
        "seconds": seconds,
        "test_accuracy": test_acc,
        "val_accuracy_by_epoch": [round(h["val_acc"], 4) for h in history],
        "train_accuracy_by_epoch": [round(h["train_acc"], 4) for h in history],
    }
    print(
        f"{arch}: {epochs} epochs in {seconds:.0f} s, test accuracy {test_acc:.4f}, "
        f"validation by epoch {row['val_accuracy_by_epoch']}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--data", default=None, help="local CIFAR-10 copy")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.2, help="peak of the one-cycle schedule")
    parser.add_argument("--budget-s", type=float, default=60.0, help="training seconds per arch")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = load_profile(args.profile)
    cfg = settings.adversarial
    device = default_device()
    splits = make_splits(
        load_profile_data(settings, args.data),
        train_size=cfg.train_size,
        val_size=cfg.val_size,
        test_size=cfg.test_size,
        seed=0,
    )
    report = {
        "device": device_description(device),
        "packages": package_versions(),
        "profile": args.profile,
        "data_source": splits.source,
        "runs": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"recipe-{args.profile}-{device.type}.json"
    for arch in args.arch:
        report["runs"].append(
            probe(
                arch,
                splits,
                cfg,
                batch_size=args.batch_size,
                lr=args.lr,
                budget_s=args.budget_s,
                max_epochs=args.max_epochs,
                device=device,
            )
        )
        write_json(path, report)  # after every architecture: a timeout keeps what finished
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
