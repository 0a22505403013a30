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
from paperlib.core.regularizers import penalized_params

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


@cache
def layer_counts(arch: str, width: float = 1.0) -> tuple[int, int]:
    """(distinct convolutions, penalized kernels) of ``arch``: what cuDNN tunes once per
    batch shape (layers of the same channels, kernel, stride and input size share one
    tuning), and the tensors a kernel penalty visits one by one on every step."""
    seen = set()

    def record(conv, inputs, output):
        settings = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride)
        seen.add((*settings, conv.padding, conv.groups, tuple(inputs[0].shape[1:])))

    with torch.device("meta"):
        model = SingleLayerCNN() if arch == "single_layer" else make_model(arch, width)
        convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        hooks = [conv.register_forward_hook(record) for conv in convolutions]
        model(torch.empty(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    return len(seen), len(penalized_params(model))


# The vendors' data sheets (SXM parts where there are several): dense bf16 tensor-core
# peaks and float32 peaks without tensor cores, FLOP/s (no sparsity), and memory
# bandwidth, bytes/s.
BF16_PEAK = {
    "h100": 989e12,
    "h200": 989e12,
    "a100": 312e12,
    "l40s": 362e12,
    "rtx 4090": 165e12,
}
FP32_PEAK = {"h100": 67e12, "h200": 67e12, "a100": 19.5e12, "l40s": 91.6e12, "rtx 4090": 82.6e12}
MEMORY_BANDWIDTH = {
    "h100": 3.35e12,
    "h200": 4.8e12,
    "a100": 2.04e12,
    "l40s": 0.864e12,
    "rtx 4090": 1.008e12,
}


def gpu_key(device_name: str) -> str | None:
    """The key of the data sheets above for a GPU named like ``torch.cuda.get_device_name()``
    ("NVIDIA H100 80GB HBM3" -> "h100"), or None when we do not know it."""
    name = device_name.lower()
    return next((key for key in BF16_PEAK if key in name), None)


def bf16_peak(device_name: str) -> float | None:
    """The data-sheet bf16 peak of a GPU named like ``torch.cuda.get_device_name()``,
    or None when we do not know it."""
    key = gpu_key(device_name)
    return BF16_PEAK[key] if key else None
