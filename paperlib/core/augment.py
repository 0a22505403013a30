"""CIFAR's usual augmentation, on whole batches where the images already are.

A random 32x32 crop of the image zero-padded by 4 pixels, then a horizontal flip with
probability one half: what torchvision's ``RandomCrop(32, padding=4)`` and
``RandomHorizontalFlip()`` do one PIL image at a time, here as two indexing operations
on a uint8 batch, so the images never leave the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, padding: int = 4
) -> torch.Tensor:
    """Crop and flip each image of ``images`` (N, C, H, W) independently.

    ``generator`` must live on the images' device; it makes the draw reproducible.
    """
    if images.dim() != 4:
        raise ValueError(
            f"random_crop_flip expects an (N, C, H, W) batch, got {tuple(images.shape)}"
        )
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    rows = top[:, None] + torch.arange(h, device=device)  # (n, h)
    cols = left[:, None] + torch.arange(w, device=device)  # (n, w)
    # A flipped image reads its columns right to left.
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
