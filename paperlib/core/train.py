"""One device-agnostic, seeded training loop, and the objectives it optimizes."""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from paperlib.core.accel import as_input, autocast, autotuned, place
from paperlib.core.augment import random_crop_flip
from paperlib.core.regularizers import activity_l1
from paperlib.core.settings import AdversarialConfig, DensityConfig

# An objective maps (model, images in [0,1], labels) to (loss to minimize, logits).
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def one_hot_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 5's data term: binary cross-entropy between softmax outputs and one-hot labels.

    Averaged over classes and examples, with probabilities clipped to [1e-7, 1 - 1e-7]
    as Keras' ``binary_crossentropy`` does. Written out in float32 rather than through
    ``F.binary_cross_entropy``, which CUDA's autocast refuses to run, and because the
    clip at 1e-7 means nothing in bf16.
    """
    probs = logits.float().softmax(dim=1).clamp(1e-7, 1 - 1e-7)
    targets = F.one_hot(labels, num_classes=logits.shape[1]).float()
    return -(targets * probs.log() + (1 - targets) * (1 - probs).log()).mean()


def density_objective(lam: float) -> Objective:
    """Eq. 5: one-hot BCE plus lambda times the batch-mean sum of |hidden activations|."""

    def objective(model, images, labels):
        hidden = model.features(images)
        logits = model.classify(hidden)
        return one_hot_bce(logits, labels) + lam * activity_l1(hidden), logits

    return objective


def penalized_cross_entropy(penalty) -> Objective:
    """Experiment 2's loss: mean cross-entropy plus a kernel penalty (``model -> tensor``)."""

    def objective(model, images, labels):
        logits = model(images)
        return F.cross_entropy(logits, labels) + penalty(model), logits

    return objective


# What ``compile`` compiles with; the tests swap in a backend that counts compilations.
COMPILE_BACKEND: str | Callable = "inductor"


def _apply(objective: Objective, model: nn.Module, images, labels):
    return objective(model, images, labels)


@functools.cache
def compiled_step(backend: str | Callable = "inductor") -> Callable:
    """The process's one compiled training step: ``(objective, model, images, labels)``.

    Dynamo keeps one cache for it: a cell's five ``train`` calls (training, three
    adversarial fine-tunes, the placebo) with fresh models and objectives of the same
    code reuse the first compilation. Shapes are static (``dynamic=False``): the full
    batch compiles once, and ``train`` runs the one short batch per epoch eagerly rather
    than compile a second graph for it.
    """
    return torch.compile(_apply, backend=backend, dynamic=False)


def training_options(cfg: DensityConfig | AdversarialConfig) -> dict[str, Any]:
    """A profile section's optimizer and input settings, as keywords for ``train``."""
    return {
        "batch_size": cfg.batch_size,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "augment": cfg.augment,
        "compile": cfg.compile,
    }


def make_optimizer(model: nn.Module, name: str, lr: float, total_steps: int):
    """``(optimizer, schedule)``: the training recipe, stepped once per batch.

    ``sgd``: Nesterov momentum 0.9 under PyTorch's one-cycle schedule (Smith and Topin
    2019) with its documented defaults (warm up over the first 30 % of the steps to
    ``lr``, then cosine annealing towards zero, momentum cycled between 0.85 and 0.95).
    ``adam``: Adam at the constant rate ``lr``. Neither adds weight decay: the penalty
    under study is the only regularizer.
    """
    if name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=total_steps)
        return optimizer, schedule
    if name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adam'")


def train(
    model: nn.Module,
    train_set: tuple[torch.Tensor, torch.Tensor],
    val_set: tuple[torch.Tensor, torch.Tensor],
    *,
    objective: Objective,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
    device: torch.device | None = None,
    augment: bool = False,
    compile: bool = False,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train with ``optimizer`` (see ``make_optimizer``); return one record per epoch
    (train/val loss and accuracy).

    The training set stays resident on the device as it comes (uint8, or [0, 1] floats
    for crafted adversarial images); each batch is augmented there (``augment``: random
    crop and flip) and becomes [0, 1] floats only when used.
    The step never waits for the device: losses and hits are summed on it and read
    once per epoch. ``compile`` runs full batches through ``compiled_step`` (the short
    last batch runs eagerly, with the same arithmetic); without it nothing is compiled.
    Shuffling and augmentation draw from their own generators, seeded with ``seed``.
    """
    device = device or default_device()
    place(model, device)
    images, labels = (t.to(device) for t in train_set)
    steps_per_epoch = -(-len(labels) // batch_size)
    optimizer, schedule = make_optimizer(model, optimizer, lr, epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(seed)
    crops = torch.Generator(device=device).manual_seed(seed)
    compiled = compiled_step(COMPILE_BACKEND) if compile else None
    history = []
    bar = tqdm(range(1, epochs + 1), desc="train", unit="epoch", disable=not progress)
    with autotuned(device):  # the batch shape repeats: tuning pays here alone
        for epoch in bar:
            model.train()
            order = torch.randperm(len(labels), generator=shuffle).to(device)
            loss_sum = torch.zeros((), device=device)  # summed on device: no per-step sync
            hits = torch.zeros((), device=device)
            for batch in order.split(batch_size):
                x, y = images[batch], labels[batch]
                if augment:
                    x = random_crop_flip(x, crops)
                with autocast(device):
                    if compiled is not None and len(batch) == batch_size:
                        loss, logits = compiled(objective, model, as_input(x), y)
                    else:
                        loss, logits = objective(model, as_input(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach() * len(batch)
                hits += (logits.argmax(dim=1) == y).sum()
            val_loss, val_acc = evaluate(model, val_set, objective, batch_size=1000)
            record = {
                "epoch": epoch,
                "train_loss": loss_sum.item() / len(labels),
                "train_acc": hits.item() / len(labels),
                "val_loss": val_loss,
                "val_acc": val_acc,
            }
            history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: tuple[torch.Tensor, torch.Tensor],
    objective: Objective,
    batch_size: int = 1000,
) -> tuple[float, float]:
    """Mean objective and accuracy over ``dataset`` in eval mode, read once at the end."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    hits = torch.zeros((), device=device)
    images, labels = dataset
    for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=False):
        x, y = as_input(x, device), y.to(device)
        with autocast(device):
            loss, logits = objective(model, x, y)
        loss_sum += loss.float() * len(y)
        hits += (logits.argmax(dim=1) == y).sum()
    return loss_sum.item() / len(labels), hits.item() / len(labels)


def adversarial_finetune(
    model: nn.Module,
    attack,
    clean_set: tuple[torch.Tensor, torch.Tensor],
    val_set: tuple[torch.Tensor, torch.Tensor],
    *,
    attack_batch: int,
    **train_kwargs,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Adversarial training as the paper describes it, from a trained model.

    Crafts adversarial versions of ``clean_set`` against ``model``, then fine-tunes a
    copy of it on the clean images plus their adversarial versions. The crafted images
    stay float: DeepFool's perturbations are far below one grey level, and rounding
    them to 8-bit pixels would undo most of them. ``model`` is left untouched.
    """
    from paperlib.core.attacks import attack_in_batches  # attacks imports config; avoid a cycle

    device = train_kwargs.get("device") or default_device()
    images, labels = clean_set
    crafted = attack_in_batches(attack, images, labels, attack_batch, device).cpu()
    tuned = copy.deepcopy(model)
    mixed = (torch.cat([as_input(images), crafted]), torch.cat([labels, labels]))
    history = train(tuned, mixed, val_set, **train_kwargs)
    return tuned, history


def placebo_finetune(
    model: nn.Module,
    clean_set: tuple[torch.Tensor, torch.Tensor],
    val_set: tuple[torch.Tensor, torch.Tensor],
    **train_kwargs,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """The control for adversarial fine-tuning: the same fine-tune without the attack.

    A copy of ``model`` is fine-tuned on ``clean_set`` twice over, in place of the clean
    images plus their adversarial versions, so that it takes exactly the steps that
    ``adversarial_finetune`` takes, with the same seed, rate and augmentation. Images
    crafted on ``model``'s decision boundary (DeepFool's) flip back under any further
    training; what adversarial training gains beyond this placebo is robustness, the
    rest is the model having moved. ``model`` is left untouched.
    """
    images, labels = clean_set
    tuned = copy.deepcopy(model)
    doubled = (torch.cat([as_input(images), as_input(images)]), torch.cat([labels, labels]))
    history = train(tuned, doubled, val_set, **train_kwargs)
    return tuned, history
