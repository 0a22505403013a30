"""FLOPs of our models, counted without running them.

The models are built on PyTorch's meta device, where tensors have shapes but no data,
and ``torch.utils.flop_counter`` adds up the FLOPs of every matrix product and
convolution of a forward pass. Elementwise work (activations, normalization, the
optimizer) is not counted: on these networks it is a few percent of the total.

A backward pass costs two forward passes (the gradient with respect to the inputs and
the one with respect to the weights, each a product of the same size). We apply that
rule instead of counting the backward pass, because the counter ignores ``groups`` in
the backward of a grouped convolution and overcounts MobileNet's depthwise layers by
their channel count.
"""

from __future__ import annotations

from functools import cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from paperlib.core.models import SingleLayerCNN, make_model

BACKWARD_PER_FORWARD = 2


@cache
def forward_flops(arch: str, width: float = 1.0) -> float:
    """FLOPs of one forward pass of a 32x32 image through ``arch`` at ``width``
    (``single_layer``: experiment 1's model)."""
    with torch.device("meta"):
        model = SingleLayerCNN() if arch == "single_layer" else make_model(arch, width)
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, 32, 32))
    return float(counter.get_total_flops())


def gradient_flops(arch: str, width: float = 1.0) -> float:
    """FLOPs of one forward and one backward pass: a training step or an attack step,
    per image."""
    return (1 + BACKWARD_PER_FORWARD) * forward_flops(arch, width)


# Dense bf16 tensor-core peaks from the vendors' data sheets, FLOP/s (no sparsity).
BF16_PEAK = {
    "h100": 989e12,
    "h200": 989e12,
    "a100": 312e12,
    "l40s": 362e12,
    "rtx 4090": 165e12,
}


def bf16_peak(device_name: str) -> float | None:
    """The data-sheet bf16 peak of a GPU named like ``torch.cuda.get_device_name()``
    ("NVIDIA H100 80GB HBM3"), or None when we do not know it."""
    name = device_name.lower()
    return next((peak for key, peak in BF16_PEAK.items() if key in name), None)
