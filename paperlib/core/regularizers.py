"""Penalties added to the data loss.

* ``activity_l1``: Eq. 5's lambda * sum_j |a_j|, summed over an example's hidden units
  and averaged over the batch (what Keras' activity regularizer does).
* ``penalized_params``: the one rule for which weights a kernel penalty touches.
"""

from __future__ import annotations

import torch
from torch import nn

from paperlib.core.registry import REGULARIZERS

PENALIZED_LAYERS = (nn.Conv2d, nn.Linear)


def activity_l1(hidden: torch.Tensor) -> torch.Tensor:
    """Per-example sum of |activations|, averaged over the batch (without lambda)."""
    return hidden.abs().flatten(1).sum(dim=1).mean()


def penalized_params(model: nn.Module) -> list[nn.Parameter]:
    """Kernels of every Conv2d and Linear layer; never biases, never BatchNorm.

    This mirrors Keras' ``kernel_regularizer`` on Conv2D and Dense layers, which is
    what the paper applied.
    """
    return [m.weight for m in model.modules() if isinstance(m, PENALIZED_LAYERS)]


def l1_penalty(model: nn.Module, c: float) -> torch.Tensor:
    """c * sum |W| over the penalized kernels (Keras' ``regularizers.l1(c)``)."""
    return c * sum(w.abs().sum() for w in penalized_params(model))


def l2_penalty(model: nn.Module, c: float) -> torch.Tensor:
    """c * sum W^2 over the penalized kernels (Keras' ``regularizers.l2(c)``, no 1/2)."""
    return c * sum(w.pow(2).sum() for w in penalized_params(model))


def elastic_penalty(model: nn.Module, c: float) -> torch.Tensor:
    """Both, each with factor c (Keras' ``regularizers.l1_l2(l1=c, l2=c)``)."""
    return l1_penalty(model, c) + l2_penalty(model, c)


def no_penalty(model: nn.Module, c: float) -> torch.Tensor:
    return torch.zeros((), device=next(model.parameters()).device)


PENALTIES = dict(
    zip(REGULARIZERS, (no_penalty, l1_penalty, l2_penalty, elastic_penalty), strict=True)
)


def make_penalty(name: str, c: float):
    """``model -> penalty tensor`` for a regularizer name in ``registry.REGULARIZERS``."""
    if name not in PENALTIES:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {list(REGULARIZERS)}")
    penalty = PENALTIES[name]
    return lambda model: penalty(model, c)
