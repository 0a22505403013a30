"""Tests for paperlib.core.metrics: densities and accuracies on inputs built by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperlib.core.metrics import (
    accuracy,
    active_fraction,
    average_density,
    correct,
    hidden_density,
    perturbation_ratios,
    predict,
)
from paperlib.core.models import SingleLayerCNN


def _uint8_images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)


# --- density --------------------------------------------------------------------------


def test_density_of_an_all_negative_pre_activation_is_zero():
    pre = -(torch.rand(4, 50, 28, 28) + 0.1)
    assert average_density(torch.relu(pre)) == 0.0


def test_density_of_an_all_positive_pre_activation_is_one():
    pre = torch.rand(4, 50, 28, 28) + 0.1
    assert average_density(torch.relu(pre)) == 1.0


def test_density_of_a_half_active_layer_is_one_half():
    pre = torch.ones(3, 50, 28, 28)
    pre[:, ::2] = -1.0  # every other filter is off
    assert average_density(torch.relu(pre)) == 0.5


def test_zero_counts_as_inactive():
    assert average_density(torch.zeros(2, 10)) == 0.0


def test_active_fraction_is_per_example_and_the_density_is_its_mean():
    hidden = torch.tensor([[[1.0, 0.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 5.0]]])
    torch.testing.assert_close(active_fraction(hidden), torch.tensor([0.75, 0.25]))
    assert average_density(hidden) == 0.5


def _cnn_with_bias(biases: torch.Tensor) -> SingleLayerCNN:
    """Zero conv weights: every unit of filter f sits at ReLU(bias[f])."""
    model = SingleLayerCNN()
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.copy_(biases)
    return model


@pytest.mark.parametrize(("bias", "density"), [(10.0, 1.0), (-10.0, 0.0)])
def test_hidden_density_of_a_cnn_with_every_unit_on_or_off(bias, density):
    model = _cnn_with_bias(torch.full((50,), bias))
    densities = hidden_density(model, _uint8_images(5), batch_size=2)
    assert torch.equal(densities, torch.full((5,), density))


def test_hidden_density_counts_filters():
    biases = torch.full((50,), -1.0)
    biases[:10] = 1.0  # 10 of 50 filters on: 10 * 28 * 28 of 39,200 units
    model = _cnn_with_bias(biases)
    densities = hidden_density(model, _uint8_images(3))
    torch.testing.assert_close(densities, torch.full((3,), 0.2))


def test_hidden_density_agrees_with_average_density_and_takes_uint8_or_float():
    torch.manual_seed(0)
    model = SingleLayerCNN()
    images = _uint8_images(6)
    as_float = images.float() / 255
    from_uint8 = hidden_density(model, images, batch_size=4)
    from_float = hidden_density(model, as_float, batch_size=4)
    torch.testing.assert_close(from_uint8, from_float)
    with torch.no_grad():
        direct = average_density(model.features(as_float))
    assert from_uint8.mean().item() == pytest.approx(direct, abs=1e-6)
    assert 0.0 < direct < 1.0


# --- predictions and accuracy ---------------------------------------------------------


class _PixelLogits(nn.Module):
    """Logits are the first ten pixels of row 0 in channel 0, times a (trainable) scale."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x.flatten(1)[:, :10] * self.scale


def _images_predicting(classes: list[int]) -> torch.Tensor:
    """uint8 images whose _PixelLogits argmax is ``classes[i]``, with decoy pixels."""
    images = torch.zeros(len(classes), 3, 32, 32, dtype=torch.uint8)
    for i, c in enumerate(classes):
        images[i, 0, 0, :10] = 20
        images[i, 0, 0, c] = 255
        images[i, 1, 0, (c + 1) % 10] = 255  # channel 1 is not read by the model
    return images


def test_predict_returns_the_argmax_in_order_across_batches():
    classes = [3, 0, 9, 9, 5]
    preds = predict(_PixelLogits(), _images_predicting(classes), batch_size=2)
    assert preds.tolist() == classes
    assert preds.dtype == torch.int64


def test_correct_and_accuracy_for_known_labels():
    model = _PixelLogits()
    images = _images_predicting([3, 0, 9, 9, 5])
    labels = torch.tensor([3, 1, 9, 2, 5])
    assert correct(model, images, labels, batch_size=3).tolist() == [True, False, True, False, True]
    assert accuracy(model, images, labels) == pytest.approx(3 / 5)
    assert accuracy(model, images, torch.tensor([3, 0, 9, 9, 5])) == 1.0
    assert accuracy(model, images, torch.tensor([0, 1, 0, 0, 0])) == 0.0


def test_uint8_and_unit_float_images_give_the_same_predictions():
    torch.manual_seed(0)
    model = SingleLayerCNN()
    images = _uint8_images(8, seed=3)
    from_uint8 = predict(model, images, batch_size=3)
    from_float = predict(model, images.float() / 255, batch_size=5)
    assert torch.equal(from_uint8, from_float)
    with torch.no_grad():
        assert torch.equal(from_uint8, model(images.float() / 255).argmax(dim=1))


def test_predicted_counts_shows_a_collapsed_model_as_one_full_class():
    from paperlib.core.metrics import predicted_counts

    assert predicted_counts(torch.full((7,), 3)) == [0, 0, 0, 7, 0, 0, 0, 0, 0, 0]
    assert predicted_counts(torch.arange(20) % 10) == [2] * 10


def test_perturbation_ratios_by_hand_and_none_where_the_clean_image_was_wrong():
    clean = torch.zeros(3, 3, 32, 32)
    clean[:, 0] = 0.5  # ||x||_2 = 0.5 * sqrt(1024) = 16
    adversarial = clean.clone()
    adversarial[0, 0, 0, 0] += 0.32  # ||r||_2 = 0.32: ratio 0.02
    adversarial[1, 1, :2, :2] = 0.4  # ||r||_2 = 0.8: ratio 0.05
    ratios = perturbation_ratios(clean, adversarial, torch.tensor([True, True, False]))
    assert ratios[0] == pytest.approx(0.02, rel=1e-5)
    assert ratios[1] == pytest.approx(0.05, rel=1e-5)
    assert ratios[2] is None
