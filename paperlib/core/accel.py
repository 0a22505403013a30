"""The device's fast path. There is one code path; the device decides what it switches on.

Models and image batches use the channels-last layout on every device: tensor cores
prefer it, and oneDNN's CPU convolutions run these networks 20-70 % faster in it (the
same arithmetic, float32, reproducible at a given thread count). On CUDA, forward
passes also run under bf16 autocast, and cuDNN picks the fastest convolution for each
input shape; on a CPU both are no-ops, so CPU runs stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device`` in the layout that device runs fastest."""
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # batch shapes repeat: tune once per shape
    return model.to(memory_format=torch.channels_last)


def as_input(images: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Images (uint8, or floats in [0, 1] such as crafted adversarial images) -> [0, 1]
    floats on ``device`` (default: where they are), in that device's layout.

    The one place pixels become model inputs: training, evaluation, attacks, attributions,
    plots and benchmarks all go through it.
    """
    x = images if device is None else images.to(device, non_blocking=True)
    x = x.to(torch.float32) / 255 if x.dtype == torch.uint8 else x
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


_bf16 = True  # switched off only by full_precision(), for the benchmarks' ablation


def autocast(device: torch.device):
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); nothing elsewhere."""
    if device.type == "cuda" and _bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Run the fast path in float32 on CUDA too: what bf16 buys is measured against it."""
    global _bf16
    previous, _bf16 = _bf16, False
    try:
        yield
    finally:
        _bf16 = previous
