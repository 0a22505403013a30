"""Penalties added to the data loss.

* ``activity_l1``: Eq. 5's lambda * sum_j |a_j|, summed over an example's hidden units
  and averaged over the batch (what Keras' activity regularizer does).
* ``penalized_params``: the one rule for which weights a kernel penalty touches.
"""

from __future__ import annotations

import torch
from torch import nn

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
