"""Models. Inputs are pixels in [0, 1]; each model normalizes inside ``forward``, so
attacks and attributions work in pixel space."""

from __future__ import annotations

import torch
from torch import nn

from paperlib.core.registry import ARCHITECTURES

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
        # Flattened in height, width, channel order, as Keras' Flatten does on its default
        # channels-last data; for our channels-last batches this order is free, no copy.
        return self.head(hidden.permute(0, 2, 3, 1).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def _ch(channels: int, width: float) -> int:
    """Channels scaled by the width multiplier, never below 4."""
    return max(4, int(round(channels * width)))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4."""

    expansion = 4

    def __init__(self, in_ch: int, mid: int, stride: int):
        super().__init__()
        out = mid * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )
        self.relu = nn.ReLU()  # not in place: captum's hooks need the pre-ReLU tensor intact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class BottleneckResNet(nn.Module):
    """A ResNet of bottleneck blocks (He et al. 2016) with a CIFAR stem; ``STAGES`` holds
    the number of blocks in each of its four stages.

    The stem is a 3x3 stride-1 convolution without max-pooling, the usual adaptation
    to 32x32 inputs; stage outputs are 32, 16, 8 and 4 pixels wide.
    """

    STAGES: tuple[int, int, int, int]

    def __init__(self, width: float = 1.0, num_classes: int = 10):
        super().__init__()
        stem = _ch(64, width)
        layers: list[nn.Module] = [
            Normalize(),
            nn.Conv2d(3, stem, 3, 1, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(),
        ]
        in_ch = stem
        for mid, blocks, stride in zip((64, 128, 256, 512), self.STAGES, (1, 2, 2, 2), strict=True):
            for i in range(blocks):
                block = Bottleneck(in_ch, _ch(mid, width), stride if i == 0 else 1)
                layers.append(block)
                in_ch = _ch(mid, width) * Bottleneck.expansion
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, num_classes)
        )
        self.gradcam_layer = layers[-1]  # last stage: 4x4 feature maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNet50(BottleneckResNet):
    """ResNet-50: bottleneck stages [3, 4, 6, 3], 50 weight layers."""

    STAGES = (3, 4, 6, 3)


class ResNet26(BottleneckResNet):
    """ResNet-26: ResNet-50's bottleneck topology at half its depth, stages [2, 2, 2, 2]
    (1 + 8 x 3 + 1 = 26 weight layers), identity shortcuts within every stage. The
    study's member of the paper's ResNet family: at width 1/4 a CPU trains it in about
    half of ResNet-50's time per image (see the methods page)."""

    STAGES = (2, 2, 2, 2)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> list:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    ]


class MobileNetV1(nn.Module):
    """MobileNet v1 (Howard et al. 2017): a full conv, then 13 depthwise-separable blocks.

    CIFAR stem: the first convolution has stride 1 instead of 2, so the strided blocks
    take 32x32 down to 2x2; Grad-CAM uses the last block with 4x4 maps.
    """

    # (output channels, stride) of the 13 depthwise-separable blocks.
    BLOCKS = (
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    )

    def __init__(self, width: float = 1.0, num_classes: int = 10):
        super().__init__()
        in_ch = _ch(32, width)
        layers: list[nn.Module] = [Normalize(), nn.Sequential(*_conv_bn(3, in_ch, 3, 1))]
        for out, stride in self.BLOCKS:
            out = _ch(out, width)
            layers.append(
                nn.Sequential(
                    *_conv_bn(in_ch, in_ch, 3, stride, groups=in_ch), *_conv_bn(in_ch, out, 1)
                )
            )
            in_ch = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, num_classes)
        )
        self.gradcam_layer = layers[-3]  # block 11: the last with 4x4 maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class VGG16(nn.Module):
    """VGG-16 (Simonyan and Zisserman 2014) with batch norm: 13 3x3 convolutions in five
    groups, each closed by a 2x2 max-pool, then a fully connected head.

    On 32x32 inputs the last pool leaves 1x1x512, so the head is 512 -> 512 -> 512 ->
    classes, the common CIFAR form of VGG's 4096-wide head. Like Keras' ``VGG16`` the
    head has no dropout: dropout is a regularizer itself, and the base model of this
    study must have none but batch norm.
    """

    GROUPS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

    def __init__(self, width: float = 1.0, num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = [Normalize()]
        in_ch = 3
        for out, convs in self.GROUPS:
            out = _ch(out, width)
            for _ in range(convs):
                layers += _conv_bn(in_ch, out, 3)
                in_ch = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        hidden = _ch(512, width)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        self.gradcam_layer = layers[-12]  # last ReLU of group 4: 4x4 maps, before its pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = dict(zip(ARCHITECTURES, (ResNet50, MobileNetV1, VGG16, ResNet26), strict=True))


def make_model(arch: str, width: float = 1.0, num_classes: int = 10) -> nn.Module:
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(MODELS)}")
    return MODELS[arch](width=width, num_classes=num_classes)
