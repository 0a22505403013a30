"""Metrics as pure functions that return floats or per-image tensors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from paperlib.core.accel import as_input
from paperlib.core.records import AttackReport
from paperlib.core.stats import bootstrap_ci


def average_density(hidden: torch.Tensor) -> float:
    """Fraction of hidden units > 0 per image, averaged over images.

    The paper's "average density" (activated neurons / all neurons); a sparse code
    has a density in [0, 0.5].
    """
    return active_fraction(hidden).mean().item()


def active_fraction(hidden: torch.Tensor) -> torch.Tensor:
    """Per example, the fraction of hidden units that are > 0."""
    return (hidden > 0).flatten(1).float().mean(dim=1)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class per image; ``images`` are uint8 or floats in [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    preds = []
    for batch in images.split(batch_size):
        preds.append(model(as_input(batch, device)).argmax(dim=1).cpu())
    return torch.cat(preds)


def predicted_counts(predictions: torch.Tensor, classes: int = 10) -> list[int]:
    """How many images were predicted as each class: a model that collapsed to one
    class shows it here, whatever its accuracy."""
    return torch.bincount(predictions.flatten().cpu(), minlength=classes).tolist()


def correct(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **kw) -> torch.Tensor:
    """Boolean per image: was it classified correctly?"""
    return predict(model, images, **kw) == labels.cpu()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **kw) -> float:
    return correct(model, images, labels, **kw).float().mean().item()


@torch.no_grad()
def hidden_density(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Per image, the fraction of ``model.features`` units > 0; its mean is the average density."""
    model.eval()
    device = next(model.parameters()).device
    densities = []
    for batch in images.split(batch_size):
        hidden = model.features(as_input(batch, device))
        densities.append(active_fraction(hidden).cpu())
    return torch.cat(densities)


def attack_report(
    model: nn.Module, clean: torch.Tensor, adversarial: torch.Tensor, labels: torch.Tensor
) -> tuple[AttackReport, torch.Tensor]:
    """Accuracy under attack, success rate and perturbation sizes, plus per-image hits.

    Success rate and norms count only images the model classified correctly before
    the attack: an attack cannot "succeed" on an image that was already wrong.
    """
    clean = as_input(clean, adversarial.device)
    was_right = predict(model, clean) == labels.cpu()
    now_right = predict(model, adversarial) == labels.cpu()
    delta = (adversarial - clean).flatten(1).cpu()
    report = AttackReport(
        accuracy=now_right.float().mean().item(),
        success_rate=(~now_right[was_right]).float().mean().item() if was_right.any() else 0.0,
        linf=delta.abs().amax(dim=1)[was_right].mean().item() if was_right.any() else 0.0,
        l2=delta.norm(dim=1)[was_right].mean().item() if was_right.any() else 0.0,
        **robustness_rho(clean.flatten(1).cpu(), delta, was_right & ~now_right, was_right),
    )
    return report, now_right


def perturbation_ratios(
    clean: torch.Tensor, adversarial: torch.Tensor, was_right: torch.Tensor
) -> list[float | None]:
    """Per image, ||r||_2 / ||x||_2 (DeepFool's robustness for one image), None where the
    model misclassified the clean image: there is no boundary to reach.

    An image the attack failed to fool keeps the ratio where the attack gave up, a lower
    bound of its distance; the per-image outcomes say which images those are.
    """
    clean = as_input(clean, torch.device("cpu")).flatten(1)
    delta = adversarial.detach().cpu().flatten(1) - clean
    ratios = (delta.norm(dim=1) / clean.norm(dim=1).clamp_min(1e-12)).tolist()
    return [r if right else None for r, right in zip(ratios, was_right.tolist(), strict=True)]


def robustness_rho(
    clean: torch.Tensor, delta: torch.Tensor, fooled: torch.Tensor, was_right: torch.Tensor
) -> dict:
    """DeepFool's robustness measure (Moosavi-Dezfooli et al. 2016): the median of
    ||r||_2 / ||x||_2 over the images the attack fooled, with a 95% bootstrap interval.

    Images it failed to fool are counted apart, never averaged in: their perturbation
    is where the attack gave up, not a distance to the boundary.
    """
    ratios = (delta.norm(dim=1) / clean.norm(dim=1).clamp_min(1e-12))[fooled].numpy()
    interval = bootstrap_ci(ratios, statistic=np.median) if len(ratios) else (None, None)
    return {
        "rho": float(np.median(ratios)) if len(ratios) else None,
        "rho_ci": interval,
        "fooled": int(fooled.sum()),
        "not_fooled": int((was_right & ~fooled).sum()),
    }
