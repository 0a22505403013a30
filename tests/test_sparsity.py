"""Tests for the sparsity measures of experiment-2 models (paperlib.core.sparsity)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from paperlib.core.models import make_model
from paperlib.core.sparsity import activation_density, hoyer, sparsity_report


def _two_relus() -> nn.Sequential:
    """Identity-weighted layers whose ReLUs see known signs: layer one passes the input's
    4 features through, layer two keeps only the first 2 (weights 1, 0, ...)."""
    first = nn.Linear(4, 4, bias=False)
    second = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.eye(4))
        second.weight.copy_(torch.eye(4)[:2])
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU())


def test_activation_density_counts_positive_units_per_layer_and_overall():
    net = _two_relus()
    # Image 1: features (+, +, -, -); image 2: (+, -, -, -).
    images = torch.tensor([[1.0, 2.0, -1.0, -3.0], [0.5, -1.0, -2.0, -1.0]])
    density = activation_density(net, images, batch_size=1)
    assert density["1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert density["3"] == pytest.approx((2 / 2 + 1 / 2) / 2)
    # Overall: 4 + 2 = 6 units per image; 2 + 2 active, then 1 + 1.
    assert density["overall"] == pytest.approx((4 / 6 + 2 / 6) / 2)


def test_activation_density_is_zero_when_every_pre_activation_is_negative():
    net = _two_relus()
    assert activation_density(net, -torch.rand(5, 4) - 0.1)["overall"] == 0.0


def test_activation_density_removes_its_hooks():
    net = _two_relus()
    activation_density(net, torch.rand(3, 4))
    assert all(not m._forward_hooks for m in net.modules())


def test_activation_density_needs_a_relu():
    with pytest.raises(ValueError, match="no nn.ReLU"):
        activation_density(nn.Linear(4, 2), torch.rand(2, 4))


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (torch.ones(100), 0.0),  # every magnitude equal
        (torch.tensor([0.0, 0.0, 0.0, 5.0]), 1.0),  # one non-zero
        (-torch.ones(9), 0.0),  # signs do not matter
        (torch.zeros(7), 1.0),  # nothing left
    ],
)
def test_hoyer_at_its_extremes(weights, expected):
    assert hoyer(weights) == pytest.approx(expected)


def test_hoyer_by_hand_and_scale_invariant():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # |w|_1 = 7, |w|_2 = 5, n = 4
    expected = (2 - 7 / 5) / (2 - 1)
    assert hoyer(w) == pytest.approx(expected)
    assert hoyer(1e-6 * w) == pytest.approx(expected)  # a shrunken kernel is not sparser
    assert 0 < expected < 1 and not math.isclose(expected, 0.5)


def test_sparsity_report_of_a_real_architecture_is_in_range():
    torch.manual_seed(0)
    model = make_model("vgg16", width=0.0625).eval()
    report = sparsity_report(model, torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert 0 < report.activation_density < 1
    # VGG-16: 13 conv ReLUs and 2 in the head.
    assert len(report.activation_density_per_layer) == 15
    assert set(report.weight_sparsity) == {"0.0001", "0.001", "0.01"}
    assert 0 <= report.hoyer <= 1 and 0 <= report.hoyer_per_layer_mean <= 1
