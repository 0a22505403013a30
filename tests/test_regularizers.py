"""Tests for paperlib.core.regularizers and the objectives of paperlib.core.train (Eq. 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.models import SingleLayerCNN
from paperlib.core.regularizers import activity_l1, penalized_params
from paperlib.core.train import density_objective, one_hot_bce

# --- activity_l1 ----------------------------------------------------------------------


def test_activity_l1_is_the_batch_mean_of_per_example_sums_of_abs():
    hidden = torch.tensor([[1.0, -2.0, 3.0], [-4.0, 0.0, 0.5]])
    # example 0: 1 + 2 + 3 = 6; example 1: 4 + 0 + 0.5 = 4.5; mean = 5.25
    assert activity_l1(hidden).item() == 5.25


def test_activity_l1_sums_over_every_hidden_dimension():
    hidden = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]], [[[0.0, 0.0], [0.0, -8.0]]]])
    assert hidden.shape == (2, 1, 2, 2)
    # example 0: 4; example 1: 8; mean = 6
    assert activity_l1(hidden).item() == 6.0


def test_activity_l1_does_not_grow_with_the_batch():
    one = torch.tensor([[1.0, -2.0, 3.0]])
    assert activity_l1(one.repeat(7, 1)).item() == activity_l1(one).item() == 6.0


def test_activity_l1_gradient_is_sign_over_batch_size():
    hidden = torch.tensor([[1.0, -2.0], [3.0, -0.5]], requires_grad=True)
    activity_l1(hidden).backward()
    torch.testing.assert_close(hidden.grad, torch.tensor([[0.5, -0.5], [0.5, -0.5]]))


def test_activity_l1_of_zero_activations_is_zero():
    assert activity_l1(torch.zeros(3, 50, 28, 28)).item() == 0.0


# --- penalized_params -----------------------------------------------------------------


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.block = nn.Sequential(nn.Conv2d(4, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU())
        self.fc = nn.Linear(2 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(self.block(self.bn(self.conv(x))).flatten(1))


def test_penalized_params_are_exactly_the_conv_and_linear_kernels():
    net = _TinyNet()
    chosen = penalized_params(net)
    expected = [net.conv.weight, net.block[0].weight, net.fc.weight]
    assert len(chosen) == len(expected)
    assert all(a is b for a, b in zip(chosen, expected, strict=True))
    never = [
        net.conv.bias,
        net.fc.bias,
        net.bn.weight,
        net.bn.bias,
        net.block[1].weight,
        net.block[1].bias,
    ]
    assert not any(p is q for p in chosen for q in never)


def test_penalized_params_of_the_single_layer_cnn():
    model = SingleLayerCNN()
    chosen = penalized_params(model)
    assert len(chosen) == 2
    assert chosen[0] is model.conv.weight and chosen[1] is model.head.weight


def test_l1_penalty_over_penalized_params_matches_a_hand_computation():
    """0.01 * sum |W| on a two-layer net with known weights; biases would add 1000 if counted."""
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        net[0].weight.fill_(0.5)  # 2 * 1 * 2 * 2 = 8 entries -> 4.0
        net[2].weight.fill_(-0.25)  # 3 * 2 = 6 entries -> 1.5
        net[0].bias.fill_(100.0)
        net[2].bias.fill_(-100.0)
    penalty = 0.01 * sum(p.abs().sum() for p in penalized_params(net))
    assert penalty.item() == pytest.approx(0.01 * (4.0 + 1.5))


# --- objectives -----------------------------------------------------------------------


def test_one_hot_bce_matches_a_hand_computation():
    probs = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]
    logits = torch.tensor(np.log(probs), dtype=torch.float32)
    labels = torch.tensor([0, 2])
    # mean over the 6 (example, class) pairs of -[y log p + (1 - y) log(1 - p)]
    terms = [
        math.log(0.5),
        math.log(0.75),
        math.log(0.75),
        math.log(0.8),
        math.log(0.7),
        math.log(0.5),
    ]
    expected = -sum(terms) / 6
    assert one_hot_bce(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_one_hot_bce_runs_in_float32_from_bf16_logits_under_autocast():
    # CUDA's autocast raises on F.binary_cross_entropy; the loss must not depend on it.
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([2, 1])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = one_hot_bce(logits.to(device, torch.bfloat16), labels.to(device))
    assert loss.dtype == torch.float32
    expected = F.binary_cross_entropy(logits.softmax(1), F.one_hot(labels, 3).float())
    assert loss.item() == pytest.approx(expected.item(), rel=2e-2)  # bf16 logits


def test_one_hot_bce_is_invariant_to_shifting_the_logits():
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([2, 1])
    torch.testing.assert_close(one_hot_bce(logits + 5.0, labels), one_hot_bce(logits, labels))


def test_one_hot_bce_clips_probabilities_so_confident_mistakes_stay_finite():
    logits = torch.tensor([[100.0, -100.0, -100.0]])
    loss = one_hot_bce(logits, torch.tensor([1])).item()
    high = float(np.float32(1 - 1e-7))  # the upper clip as float32 stores it
    low = float(np.float32(1e-7))
    # class 0: p = high, y = 0; class 1: p = low, y = 1; class 2: p = low, y = 0
    expected = -(math.log(1 - high) + math.log(low) + math.log(1 - low)) / 3
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected, rel=1e-4)


class _Identityish(nn.Module):
    """features = ReLU(x), classify = the first three hidden values: easy to do by hand."""

    def features(self, x):
        return torch.relu(x)

    def classify(self, hidden):
        return hidden.flatten(1)[:, :3]


def test_density_objective_is_bce_plus_lambda_times_activity_l1():
    model = _Identityish()
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 2.0, -1.0, 4.0]])
    y = torch.tensor([2, 1])
    # hidden = [[1, 0, 3, 0.5], [0, 2, 0, 4]]: sums 4.5 and 6, batch mean 5.25
    logits_by_hand = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]])
    for lam in (0.0, 1e-3, 0.5):
        loss, logits = density_objective(lam)(model, x, y)
        assert torch.equal(logits, logits_by_hand)
        expected = one_hot_bce(logits_by_hand, y).item() + lam * 5.25
        assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_density_objective_on_the_cnn_penalizes_the_hidden_layer():
    torch.manual_seed(0)
    model = SingleLayerCNN()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3, 7])
    base, logits = density_objective(0.0)(model, x, y)
    penalized, _ = density_objective(1e-4)(model, x, y)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(base, one_hot_bce(model(x), y))
    torch.testing.assert_close(penalized - base, 1e-4 * activity_l1(model.features(x)))
    assert penalized.item() > base.item()
