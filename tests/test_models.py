"""Tests for paperlib.core.models, and for paperlib.core.train's loop on the single-layer CNN."""

from __future__ import annotations

import pytest
import torch

from paperlib.core.data import synthetic_cifar10
from paperlib.core.models import Normalize, SingleLayerCNN
from paperlib.core.train import (
    adversarial_finetune,
    density_objective,
    placebo_finetune,
    seed_everything,
    train,
)

CPU = torch.device("cpu")
MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10's channel statistics, as in the paper's code
STD = (0.2470, 0.2435, 0.2616)


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_hidden_layer_has_the_papers_39200_units_and_ten_logits():
    torch.manual_seed(0)
    model = SingleLayerCNN()
    x = _images(3)
    hidden = model.features(x)
    assert hidden.shape == (3, 50, 28, 28)
    assert hidden[0].numel() == 39_200 == SingleLayerCNN.hidden_units
    assert model(x).shape == (3, 10)
    assert model.head.in_features == 39_200
    assert (hidden >= 0).all()  # after the ReLU


def test_normalize_standardizes_each_channel_with_cifar10_statistics():
    norm = Normalize()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    at_mean = mean.expand(2, 3, 4, 4)
    torch.testing.assert_close(norm(at_mean), torch.zeros(2, 3, 4, 4))
    torch.testing.assert_close(norm(at_mean + std), torch.ones(2, 3, 4, 4))
    torch.testing.assert_close(norm(at_mean - 2 * std), torch.full((2, 3, 4, 4), -2.0))
    gray = torch.full((1, 3, 1, 1), 0.5)
    expected = [(0.5 - 0.4914) / 0.2470, (0.5 - 0.4822) / 0.2435, (0.5 - 0.4465) / 0.2616]
    torch.testing.assert_close(norm(gray).flatten(), torch.tensor(expected))


def test_normalize_is_part_of_the_model_and_carries_no_trainable_parameters():
    model = SingleLayerCNN()
    assert {name for name, _ in model.named_buffers()} == {"normalize.mean", "normalize.std"}
    assert not any(name.startswith("normalize") for name, _ in model.named_parameters())


def test_features_see_normalized_pixels():
    """With an identity-like conv (one tap, no bias), a hidden unit equals the normalized
    pixel under it, clipped at zero by the ReLU."""
    model = SingleLayerCNN(filters=3)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        for c in range(3):
            model.conv.weight[c, c, 0, 0] = 1.0
    x = _images(2)
    expected = torch.relu(
        (x[:, :, :28, :28] - torch.tensor(MEAN).view(1, 3, 1, 1))
        / torch.tensor(STD).view(1, 3, 1, 1)
    )
    torch.testing.assert_close(model.features(x), expected)


def test_forward_is_classify_of_features():
    torch.manual_seed(1)
    model = SingleLayerCNN().eval()
    x = _images(4, seed=1)
    with torch.no_grad():
        assert torch.equal(model(x), model.classify(model.features(x)))
        hidden = model.features(x)
        # Keras' Flatten order on channels-last data: height, width, then channel.
        by_hand = hidden.permute(0, 2, 3, 1).reshape(4, -1) @ model.head.weight.T
        by_hand = by_hand + model.head.bias
        torch.testing.assert_close(model.classify(hidden), by_hand)


# --- the training loop ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data():
    data = synthetic_cifar10(200, 100, seed=0)
    return (data.train_images, data.train_labels), (data.test_images, data.test_labels)


def _train_once(tiny_data, seed: int = 0, lam: float = 1e-5):
    seed_everything(seed)
    model = SingleLayerCNN()
    train_set, val_set = tiny_data
    history = train(
        model,
        train_set,
        val_set,
        objective=density_objective(lam),
        epochs=2,
        batch_size=100,
        lr=1e-3,
        seed=seed,
        device=CPU,
        progress=False,
    )
    return history, model


@pytest.fixture(scope="module")
def two_runs(tiny_data):
    return _train_once(tiny_data), _train_once(tiny_data)


def test_train_returns_one_record_per_epoch_and_learns(two_runs):
    (history, _), _ = two_runs
    assert [r["epoch"] for r in history] == [1, 2]
    for record in history:
        assert set(record) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
        assert 0.0 <= record["train_acc"] <= 1.0 and 0.0 <= record["val_acc"] <= 1.0
        assert record["train_loss"] > 0 and record["val_loss"] > 0
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert history[1]["val_loss"] < history[0]["val_loss"]


def test_train_is_deterministic_for_a_seed(two_runs):
    (history_a, model_a), (history_b, model_b) = two_runs
    assert history_a == history_b
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert list(state_a) == list(state_b)
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


def test_train_leaves_the_model_on_the_device_and_changes_its_weights(tiny_data, two_runs):
    (_, trained), _ = two_runs
    seed_everything(0)
    untrained = SingleLayerCNN()
    assert next(trained.parameters()).device == CPU
    assert not torch.equal(trained.conv.weight, untrained.conv.weight)
    assert not torch.equal(trained.head.weight, untrained.head.weight)


def _finetune_kwargs(objective):
    return dict(
        objective=objective, epochs=1, batch_size=50, lr=1e-3, seed=3, device=CPU, progress=False
    )


def test_the_placebo_is_adversarial_finetuning_with_the_attack_taken_out(tiny_data, two_runs):
    """With an attack that changes nothing, adversarial fine-tuning and the placebo take
    the same steps on the same images: identical weights. With a real attack they differ,
    and neither touches the model they start from."""
    (_, trained), _ = two_runs
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    (images, labels), val_set = tiny_data
    kwargs = _finetune_kwargs(density_objective(0.0))
    no_attack = lambda x, y: x  # noqa: E731  (attacks get [0, 1] floats)
    placebo, placebo_history = placebo_finetune(trained, (images, labels), val_set, **kwargs)
    same, same_history = adversarial_finetune(
        trained, no_attack, (images, labels), val_set, attack_batch=64, **kwargs
    )
    assert placebo_history == same_history
    for name, weight in placebo.state_dict().items():
        assert torch.equal(weight, same.state_dict()[name]), name
    noisy = lambda x, y: (x + 0.1).clamp(0, 1)  # noqa: E731
    moved, _ = adversarial_finetune(
        trained, noisy, (images, labels), val_set, attack_batch=64, **kwargs
    )
    assert not torch.equal(moved.head.weight, placebo.head.weight)
    for name, weight in trained.state_dict().items():
        assert torch.equal(weight, before[name]), name
