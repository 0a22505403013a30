"""Tests for the training recipe (paperlib.core.train.make_optimizer and train's use of it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from paperlib.core import train as train_module
from paperlib.core.data import synthetic_cifar10
from paperlib.core.models import SingleLayerCNN, make_model
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import make_optimizer, penalized_cross_entropy, seed_everything, train


def _rates(name: str, lr: float, steps: int) -> list[float]:
    model = nn.Linear(2, 2)
    optimizer, schedule = make_optimizer(model, name, lr, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_sgd_recipe_is_nesterov_without_weight_decay():
    optimizer, _ = make_optimizer(nn.Linear(2, 2), "sgd", 0.1, 10)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert group["nesterov"] and group["weight_decay"] == 0


def test_sgd_rate_warms_up_to_its_peak_then_anneals_towards_zero():
    rates = _rates("sgd", 0.1, 100)
    peak = max(range(100), key=rates.__getitem__)
    assert rates[peak] == pytest.approx(0.1, rel=1e-3)
    assert 25 <= peak <= 35  # the first 30 % of the steps warm up
    assert rates[0] == pytest.approx(0.1 / 25)  # PyTorch's default initial division
    assert rates[-1] < 1e-3 and all(
        a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False)
    )


def test_adam_recipe_keeps_a_constant_rate():
    optimizer, _ = make_optimizer(nn.Linear(2, 2), "adam", 1e-3, 10)
    assert isinstance(optimizer, torch.optim.Adam)
    assert set(_rates("adam", 1e-3, 10)) == {1e-3}


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer(nn.Linear(2, 2), "rmsprop", 0.1, 10)


def test_sgd_recipe_learns_a_small_task():
    data = synthetic_cifar10(400, 200, seed=0)
    seed_everything(0)
    history = train(
        SingleLayerCNN(),
        (data.train_images, data.train_labels),
        (data.test_images, data.test_labels),
        objective=penalized_cross_entropy(make_penalty("base", 0.0)),
        epochs=3,
        batch_size=32,
        lr=0.01,
        optimizer="sgd",
        seed=0,
        device=torch.device("cpu"),
        progress=False,
    )
    assert history[-1]["val_acc"] >= 0.9
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_vgg16_has_no_dropout():
    """Dropout regularizes on its own: the base model of the study must have none."""
    assert not any(isinstance(m, nn.Dropout) for m in make_model("vgg16").modules())


def _train_twice(compile: bool) -> list[dict[str, float]]:
    """A cell's pattern: a model trained, then a fresh copy fine-tuned with a fresh
    objective of the same code, each with a short last batch (100 = 3 x 32 + 4, then
    70 = 2 x 32 + 6)."""
    data = synthetic_cifar10(100, 10, seed=0)
    histories = []
    for n in (100, 70):
        seed_everything(0)
        histories += train(
            make_model("vgg16", 0.0625),
            (data.train_images[:n], data.train_labels[:n]),
            (data.test_images, data.test_labels),
            objective=penalized_cross_entropy(make_penalty("elastic", 1e-3)),
            epochs=1,
            batch_size=32,
            lr=0.01,
            optimizer="sgd",
            seed=0,
            device=torch.device("cpu"),
            compile=compile,
            progress=False,
        )
    return histories


def test_compile_compiles_the_training_step_once_per_process(monkeypatch):
    """`compile: true` used to compile again for every short last batch (a second,
    dynamic graph) and, on torch versions that guard on the model object, for every
    fresh model: a cell trains five, so Dynamo reached its recompile limit and fell back
    to eager without a word. Dynamo's own counter sees every graph it compiles, whatever
    the backend; the eager backend keeps the test fast and the arithmetic unchanged."""
    monkeypatch.setattr(train_module, "COMPILE_BACKEND", "eager", raising=False)
    torch._dynamo.reset()
    counters.clear()
    compiled = _train_twice(compile=True)
    assert counters["stats"]["unique_graphs"] == 1
    # Compiling changes how the step runs, not what it computes.
    assert compiled == _train_twice(compile=False)
