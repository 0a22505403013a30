"""The device's fast path. There is one code path; the device decides what it switches on.

Models and image batches use the channels-last layout on every device: tensor cores
prefer it, and oneDNN's CPU convolutions run these networks 20-70 % faster in it (the
same arithmetic, float32, reproducible at a given thread count). On CUDA, forward
passes also run under bf16 autocast, float32 passes stay float32 (no TF32), and cuDNN
tunes its convolutions while training; on a CPU all three are no-ops, so CPU runs stay
float32.
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
        exact_float32()
    return model.to(memory_format=torch.channels_last)


def exact_float32() -> None:
    """float32 means float32 on CUDA too. By default its convolutions run in TF32, whose
    rounding (about 1e-3 relative) exceeds what decides a DeepFool image (an overshoot
    of 1e-6 and a logit margin of 1e-4), so the pass that verifies an attack, at another
    batch size and so another kernel, could undo it; occlusion and Grad-CAM differences
    are as fine. Training runs under bf16 autocast and loses nothing by it."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@contextlib.contextmanager
def autotuned(device: torch.device) -> Iterator[None]:
    """cuDNN's autotuning, for training only: there the batch shape repeats, so tuning
    once per shape pays. Attacks and attributions shrink their batches (DeepFool's
    active set, AutoAttack's survivors, every last batch), and each new shape would be
    tuned again."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


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
