"""Tests for paperlib.core.regularizers (activity L1, the kernel penalties), the objectives
of paperlib.core.train (Eq. 5, penalized cross-entropy) and weight sparsity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.models import SingleLayerCNN
from paperlib.core.registry import REGULARIZERS
from paperlib.core.regularizers import (
    activity_l1,
    elastic_penalty,
    l1_penalty,
    l2_penalty,
    make_penalty,
    no_penalty,
    penalized_params,
)
from paperlib.core.sparsity import weight_sparsity
from paperlib.core.train import density_objective, one_hot_bce, penalized_cross_entropy

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


# --- kernel penalties on a hand-made two-layer net ------------------------------------


def _two_layer_net() -> nn.Sequential:
    """Conv (8 kernel entries of 0.5) + BN + Linear (6 entries of -0.25); huge biases and
    BN parameters that would dominate any penalty that wrongly counted them."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 3)
    )
    with torch.no_grad():
        net[0].weight.fill_(0.5)  # sum |W| = 4, sum W^2 = 2
        net[4].weight.fill_(-0.25)  # sum |W| = 1.5, sum W^2 = 0.375
        net[0].bias.fill_(100.0)
        net[4].bias.fill_(-100.0)
        net[1].weight.fill_(50.0)
        net[1].bias.fill_(-50.0)
    return net


C = 0.01
L1_BY_HAND = C * (4.0 + 1.5)
L2_BY_HAND = C * (2.0 + 0.375)


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        (l1_penalty, L1_BY_HAND),
        (l2_penalty, L2_BY_HAND),
        (elastic_penalty, L1_BY_HAND + L2_BY_HAND),
        (no_penalty, 0.0),
    ],
)
def test_penalties_equal_their_values_by_hand(penalty, expected):
    value = penalty(_two_layer_net(), C)
    assert value.shape == ()
    assert value.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("base", 0.0), ("l1", L1_BY_HAND), ("l2", L2_BY_HAND), ("elastic", L1_BY_HAND + L2_BY_HAND)],
)
def test_make_penalty_binds_the_factor(name, expected):
    assert make_penalty(name, C)(_two_layer_net()).item() == pytest.approx(expected, rel=1e-6)
    assert make_penalty(name, 2 * C)(_two_layer_net()).item() == pytest.approx(
        2 * expected, rel=1e-6
    )


def test_penalty_gradients_are_c_sign_w_and_2_c_w_on_kernels_only():
    net = _two_layer_net()
    elastic_penalty(net, C).backward()
    torch.testing.assert_close(net[0].weight.grad, torch.full_like(net[0].weight, C * (1 + 1.0)))
    torch.testing.assert_close(net[4].weight.grad, torch.full_like(net[4].weight, C * (-1 - 0.5)))
    assert net[0].bias.grad is None and net[4].bias.grad is None
    assert net[1].weight.grad is None and net[1].bias.grad is None


def test_make_penalty_rejects_an_unknown_name_naming_the_choices():
    with pytest.raises(ValueError, match="unknown regularizer 'dropout'") as err:
        make_penalty("dropout", C)
    for name in REGULARIZERS:
        assert name in str(err.value)


def test_penalized_cross_entropy_adds_the_penalty_to_the_mean_cross_entropy():
    net = _two_layer_net().eval()
    x = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]], [[[0.9, 0.8], [0.7, 0.6]]]])
    y = torch.tensor([2, 0])
    loss, logits = penalized_cross_entropy(make_penalty("elastic", C))(net, x, y)
    torch.testing.assert_close(logits, net(x))
    expected = F.cross_entropy(net(x), y).item() + L1_BY_HAND + L2_BY_HAND
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    base, _ = penalized_cross_entropy(make_penalty("base", C))(net, x, y)
    assert base.item() == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-6)


def test_weight_sparsity_counts_small_kernel_entries_only():
    net = _two_layer_net()
    with torch.no_grad():
        conv = [0.0, 5e-4, -9e-4, 9.9e-4, 2e-3, 0.5, -0.5, 1.0]  # 4 below 1e-3
        net[0].weight.copy_(torch.tensor(conv).view(2, 1, 2, 2))
        net[4].weight.zero_()  # 6 below any threshold
        net[0].bias.zero_()  # would add 2 + 3 + 4 entries if biases and BN counted
        net[4].bias.zero_()
        net[1].weight.zero_()
    assert weight_sparsity(net) == pytest.approx(10 / 14)
    assert weight_sparsity(net, threshold=1e-4) == pytest.approx(7 / 14)
    assert weight_sparsity(net, threshold=0.6) == pytest.approx(13 / 14)
    assert weight_sparsity(net, threshold=2.0) == 1.0


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
