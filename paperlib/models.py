"""Models. Inputs are pixels in [0, 1]; each model normalizes inside ``forward``, so
attacks and attributions work in pixel space."""

from __future__ import annotations

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """Per-channel standardization with CIFAR-10's statistics."""

    def __init__(self, mean=CIFAR10_MEAN, std=CIFAR10_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SingleLayerCNN(nn.Module):
    """Experiment 1: one 5x5 conv layer with 50 filters, valid padding and ReLU.

    On 32x32 inputs the hidden layer has 28 * 28 * 50 = 39,200 units, the count the
    paper gives; a linear layer maps them to the 10 class logits.
    """

    hidden_units = 28 * 28 * 50

    def __init__(self, filters: int = 50, kernel_size: int = 5, num_classes: int = 10):
        super().__init__()
        self.normalize = Normalize()
        self.conv = nn.Conv2d(3, filters, kernel_size)  # valid padding: 32 -> 28
        side = 32 - kernel_size + 1
        self.head = nn.Linear(filters * side * side, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations after the ReLU, shape (N, 50, 28, 28)."""
        return torch.relu(self.conv(self.normalize(x)))

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
