"""Tests for paperlib.run.checkpoints (save, load, reuse, refuse) and config.clean_model_config,
the checkpoint key that experiments 2 and 3 share."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from paperlib.core.settings import AdversarialCell, Profile
from paperlib.run.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    train_or_load,
)
from paperlib.run.profiles import clean_model_config
from paperlib.run.store import config_hash

CONFIG = {"arch": "tiny", "seed": 0}
HISTORY = [{"epoch": 1, "train_loss": 2.0, "train_acc": 0.3, "val_loss": 2.1, "val_acc": 0.25}]


def _model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 10)
    )
    with torch.no_grad():  # buffers too must survive the round trip
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].num_batches_tracked.fill_(seed + 3)
    return model


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


class _CountingTrainer:
    """A stand-in for training: copies fixed weights into the model and counts its calls."""

    def __init__(self, seed: int = 1):
        self.trained = _model(seed)
        self.calls = 0

    def __call__(self, model: nn.Module) -> list:
        self.calls += 1
        model.load_state_dict(self.trained.state_dict())
        return HISTORY


def _no_warnings(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


# --- save, load, reuse ----------------------------------------------------------------


def test_save_then_load_restores_identical_weights_config_and_history(smoke_env):
    path = checkpoint_path("smoke", "k1")
    saved = _model(seed=0)
    save_checkpoint(path, saved, "k1", CONFIG, HISTORY)
    assert path.is_file() and path.is_relative_to(smoke_env)
    loaded = _model(seed=5)
    assert not _same_weights(loaded, saved)
    checkpoint = _no_warnings(load_checkpoint, path, loaded, "k1")
    assert _same_weights(loaded, saved)
    assert checkpoint["key"] == "k1"
    assert checkpoint["config"] == CONFIG
    assert checkpoint["history"] == HISTORY


def test_load_checkpoint_of_a_missing_file_is_none_without_a_warning(smoke_env):
    model = _model(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert (
        _no_warnings(load_checkpoint, checkpoint_path("smoke", "absent"), model, "absent") is None
    )
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_train_or_load_trains_once_then_reuses(smoke_env):
    path = checkpoint_path("smoke", "k2")
    trainer = _CountingTrainer()
    first = _model(seed=0)
    history, reused = _no_warnings(train_or_load, first, path, "k2", CONFIG, trainer)
    assert (history, reused, trainer.calls) == (HISTORY, False, 1)
    assert _same_weights(first, trainer.trained)
    assert path.is_file()

    second = _model(seed=7)
    history, reused = _no_warnings(train_or_load, second, path, "k2", CONFIG, trainer)
    assert (history, reused, trainer.calls) == (HISTORY, True, 1)
    assert _same_weights(second, trainer.trained)


# --- checkpoints that must not be used ------------------------------------------------


def _retrains_with_a_warning(path, key: str, match: str) -> _CountingTrainer:
    """train_or_load warns, retrains once, and leaves a sound checkpoint for ``key``."""
    trainer = _CountingTrainer(seed=2)
    model = _model(seed=9)
    with pytest.warns(UserWarning, match=match):
        history, reused = train_or_load(model, path, key, CONFIG, trainer)
    assert (history, reused, trainer.calls) == (HISTORY, False, 1)
    assert _same_weights(model, trainer.trained)
    reloaded = _model(seed=11)
    checkpoint = _no_warnings(load_checkpoint, path, reloaded, key)
    assert checkpoint is not None and checkpoint["key"] == key
    assert _same_weights(reloaded, trainer.trained)
    return trainer


def test_a_truncated_checkpoint_is_reported_retrained_and_overwritten(smoke_env):
    path = checkpoint_path("smoke", "k3")
    save_checkpoint(path, _model(seed=0), "k3", CONFIG, HISTORY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    model = _model(seed=4)
    with pytest.warns(UserWarning, match="not using checkpoint"):
        assert load_checkpoint(path, model, "k3") is None
    _retrains_with_a_warning(path, "k3", match=r"not using checkpoint .*k3\.pt.*retraining")
    assert path.stat().st_size == len(data)


def test_a_checkpoint_saved_under_another_key_names_both_and_is_retrained(smoke_env):
    path = checkpoint_path("smoke", "k4")
    save_checkpoint(path, _model(seed=0), "old-key", CONFIG, HISTORY)
    _retrains_with_a_warning(path, "new-key", match=r"'old-key'.*'new-key'")


def test_a_checkpoint_for_another_architecture_is_retrained(smoke_env):
    path = checkpoint_path("smoke", "k5")
    other = nn.Sequential(nn.Linear(3, 2))
    save_checkpoint(path, other, "k5", CONFIG, HISTORY)
    _retrains_with_a_warning(path, "k5", match="not using checkpoint")


TRIPPED: list[str] = []


def _trip() -> str:
    TRIPPED.append("code ran while unpickling")
    return "tripped"


class _Tripwire:
    """Unpickling this runs ``_trip``: what a hostile checkpoint would do."""

    def __reduce__(self):
        return (_trip, ())


def test_a_checkpoint_carrying_a_pickled_object_is_refused_not_executed(smoke_env):
    path = checkpoint_path("smoke", "k6")
    hostile = {
        "key": "k6",
        "config": CONFIG,
        "history": HISTORY,
        "state_dict": _model(seed=0).state_dict(),
        "x": _Tripwire(),
    }
    path.parent.mkdir(parents=True)
    torch.save(hostile, path)
    TRIPPED.clear()
    _retrains_with_a_warning(path, "k6", match="not using checkpoint .*Weights only load failed")
    assert TRIPPED == []  # weights_only=True refused the object instead of building it
    # Control: an unrestricted load of the same bytes would have run the code.
    torch.save(hostile, path.parent / "hostile.pt")
    unsafe = torch.load(path.parent / "hostile.pt", weights_only=False)
    assert unsafe["x"] == "tripped" and TRIPPED == ["code ran while unpickling"]
    TRIPPED.clear()


# --- paths and keys -------------------------------------------------------------------


def test_checkpoint_path_lives_under_the_output_root(smoke_env):
    assert checkpoint_path("smoke", "0123abcd") == smoke_env / "checkpoints/smoke/0123abcd.pt"


PROFILE = Profile(name="test")
CELL = AdversarialCell(arch="vgg16", regularizer="l1", penalty=0.01, seed=0)


def _with_width(profile: Profile, arch: str, width: float) -> Profile:
    widths = {**profile.adversarial.width, arch: width}
    return dataclasses.replace(
        profile, adversarial=dataclasses.replace(profile.adversarial, width=widths)
    )


def test_clean_model_config_is_identical_for_identical_inputs():
    a = clean_model_config(PROFILE, CELL, "cifar10-abc")
    b = clean_model_config(
        Profile(name="test"),
        AdversarialCell(arch="vgg16", regularizer="l1", penalty=0.01),
        "cifar10-abc",
    )
    assert a == b and config_hash(a) == config_hash(b)
    assert a["width"] == 1.0 and a["penalty"] == 0.01 and a["seed"] == 0


@pytest.mark.parametrize(
    ("profile", "cell", "data"),
    [
        (PROFILE, dataclasses.replace(CELL, arch="resnet50"), "cifar10-abc"),
        (PROFILE, dataclasses.replace(CELL, regularizer="elastic"), "cifar10-abc"),
        (PROFILE, dataclasses.replace(CELL, seed=1), "cifar10-abc"),
        (PROFILE, dataclasses.replace(CELL, penalty=1e-4), "cifar10-abc"),
        (_with_width(PROFILE, "vgg16", 0.25), CELL, "cifar10-abc"),
        (PROFILE, CELL, "synthetic"),
        (
            dataclasses.replace(
                PROFILE, adversarial=dataclasses.replace(PROFILE.adversarial, epochs=3)
            ),
            CELL,
            "cifar10-abc",
        ),
        (
            dataclasses.replace(
                PROFILE, adversarial=dataclasses.replace(PROFILE.adversarial, optimizer="adam")
            ),
            CELL,
            "cifar10-abc",
        ),
    ],
    ids=["arch", "regularizer", "seed", "penalty", "width", "data", "epochs", "optimizer"],
)
def test_clean_model_config_changes_with_what_shapes_the_weights(profile, cell, data):
    reference = clean_model_config(PROFILE, CELL, "cifar10-abc")
    changed = clean_model_config(profile, cell, data)
    assert changed != reference
    assert config_hash(changed) != config_hash(reference)


def test_clean_model_config_ignores_other_architectures_widths_and_the_attacks():
    reference = clean_model_config(PROFILE, CELL, "cifar10-abc")
    other_width = _with_width(PROFILE, "resnet50", 0.25)
    assert clean_model_config(other_width, CELL, "cifar10-abc") == reference
    # Fine-tuning and attack settings come after the clean model: they must not retrain it.
    later = dataclasses.replace(
        PROFILE,
        name="other-name",
        adversarial=dataclasses.replace(PROFILE.adversarial, finetune_epochs=1, eval_size=20),
    )
    assert clean_model_config(later, CELL, "cifar10-abc") == reference
