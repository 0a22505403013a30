"""How sparse a trained network is: in its activations and in its weights.

The paper argues that sparsity buys robustness but measures sparsity only in the
single-layer CNN of experiment 1. These measures put a number on the big models too.

* ``activation_density``: the fraction of post-ReLU units that fire for an image, per
  ReLU layer and over the whole network. This is the sparsity the paper's argument is
  about (few neurons active per stimulus).
* ``weight_sparsity``: the fraction of penalized weights below an absolute threshold.
  Thresholds are arbitrary, and a BatchNorm after a convolution rescales its output,
  so a kernel can shrink towards zero as a whole without the network changing.
* ``hoyer``: Hoyer's (2004) measure, ``(sqrt(n) - |w|_1 / |w|_2) / (sqrt(n) - 1)``:
  0 when every weight has the same magnitude, 1 when a single weight is non-zero. It
  needs no threshold and ignores scale, so a uniformly shrunken kernel is not "sparse".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from paperlib.core.accel import as_input
from paperlib.core.records import SparsityReport
from paperlib.core.regularizers import penalized_params

WEIGHT_THRESHOLDS = (1e-4, 1e-3, 1e-2)  # |w| below this counts as zero


@torch.no_grad()
def activation_density(
    model: nn.Module, images: torch.Tensor, batch_size: int = 500
) -> dict[str, float]:
    """Fraction of units > 0 after each ``nn.ReLU`` of ``model``, averaged over ``images``.

    Keys are the ReLU modules' names; ``"overall"`` weighs every unit of the network
    equally (active units / all units, per image, averaged over images).
    """
    model.eval()
    device = next(model.parameters()).device
    relus = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    if not relus:
        raise ValueError("the model has no nn.ReLU module whose output could be measured")
    active = dict.fromkeys(relus, 0.0)
    units = dict.fromkeys(relus, 0)
    hooks = [
        module.register_forward_hook(_counter(name, active, units))
        for name, module in relus.items()
    ]
    try:
        for batch in images.split(batch_size):
            model(as_input(batch, device))
    finally:
        for hook in hooks:
            hook.remove()
    n = len(images)
    density = {name: active[name] / (units[name] * n) for name in relus}
    # Units per image of each layer: the number counted over all images, divided by n.
    density["overall"] = sum(active.values()) / sum(units.values()) / n
    return density


def _counter(name: str, active: dict, units: dict):
    def hook(module, inputs, output):
        active[name] += (output > 0).sum().item()
        units[name] = output[0].numel()  # units per image

    return hook


def weight_sparsity(model: nn.Module, threshold: float = 1e-3) -> float:
    """Fraction of penalized weights with |w| < ``threshold``."""
    weights = torch.cat([w.detach().abs().flatten() for w in penalized_params(model)])
    return (weights < threshold).float().mean().item()


def hoyer(weights: torch.Tensor) -> float:
    """Hoyer's sparsity of a tensor: 0 for equal magnitudes, 1 for a single non-zero."""
    w = weights.detach().flatten().double()
    n = w.numel()
    if n < 2:
        raise ValueError("Hoyer's measure needs at least two weights")
    l2 = w.norm()
    if l2 == 0:
        return 1.0  # all zero: as sparse as it gets
    return (math.sqrt(n) - (w.abs().sum() / l2).item()) / (math.sqrt(n) - 1)


def sparsity_report(model: nn.Module, images: torch.Tensor) -> SparsityReport:
    """Every measure of this module for one model."""
    kernels = penalized_params(model)
    density = activation_density(model, images)
    return SparsityReport(
        activation_density=density["overall"],
        activation_density_per_layer={k: v for k, v in density.items() if k != "overall"},
        weight_sparsity={f"{t:g}": weight_sparsity(model, t) for t in WEIGHT_THRESHOLDS},
        hoyer=hoyer(torch.cat([w.flatten() for w in kernels])),
        hoyer_per_layer_mean=sum(hoyer(w) for w in kernels) / len(kernels),
    )
