"""Self-describing checkpoints, keyed by a hash of everything that shaped the weights.

Experiment 3 reuses experiment 2's clean-trained models through these keys. A
checkpoint that is truncated, unreadable or carries another key is reported and
never used; the caller retrains and overwrites it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from paperlib.core.accel import place
from paperlib.core.models import make_model
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import AdversarialCell, Profile
from paperlib.core.train import penalized_cross_entropy, seed_everything, train, training_options
from paperlib.run.profiles import clean_model_config
from paperlib.run.store import config_hash, output_root, safe_id, write_atomic

Pair = tuple[torch.Tensor, torch.Tensor]


def checkpoint_path(profile: str, key: str) -> Path:
    return output_root() / "checkpoints" / safe_id(profile) / f"{safe_id(key)}.pt"


def save_checkpoint(path: Path, model: nn.Module, key: str, config: dict, history: list) -> None:
    buffer = io.BytesIO()
    torch.save(
        {"key": key, "config": config, "history": history, "state_dict": model.state_dict()}, buffer
    )
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, model: nn.Module, key: str) -> dict | None:
    """Load weights into ``model`` if ``path`` holds a sound checkpoint with ``key``."""
    if not path.exists():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("key") != key:
            raise ValueError(f"it was saved for config {checkpoint.get('key')!r}, not {key!r}")
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is retrained
        warnings.warn(f"not using checkpoint {path}: {err}; retraining", stacklevel=2)
        return None
    return checkpoint


def train_or_load(
    model: nn.Module, path: Path, key: str, config: dict, train_fn: Callable[[nn.Module], list]
) -> tuple[list, bool]:
    """Reuse the checkpoint at ``path`` or train with ``train_fn`` and save one.

    Returns the training history and whether the checkpoint was reused.
    """
    checkpoint = load_checkpoint(path, model, key)
    if checkpoint is not None:
        return checkpoint["history"], True
    history = train_fn(model)
    save_checkpoint(path, model, key, config, history)
    return history, False


def clean_trained_model(
    profile: Profile,
    cell: AdversarialCell,
    train_set: Pair,
    val_set: Pair,
    data: str,
    device: torch.device,
) -> tuple[nn.Module, list, str, bool]:
    """Experiment 2's clean-trained model of ``cell``: reused from its checkpoint, or
    trained with the profile's settings and saved.

    Returns the model (in eval mode), its training history, its checkpoint key and
    whether the checkpoint was reused. Experiments 2 and 3 both call this, so they
    always explain and attack the same weights.
    """
    cfg = profile.adversarial
    seed_everything(cell.seed)
    model = place(make_model(cell.arch, width=cfg.width.get(cell.arch, 1.0)), device)
    config = clean_model_config(profile, cell, data)
    key = config_hash(config)
    objective = penalized_cross_entropy(make_penalty(cell.regularizer, cell.penalty))
    history, reused = train_or_load(
        model,
        checkpoint_path(profile.name, key),
        key,
        config,
        lambda m: train(
            m,
            train_set,
            val_set,
            objective=objective,
            epochs=cfg.epochs,
            seed=cell.seed,
            device=device,
            **training_options(cfg),
        ),
    )
    return model.eval(), history, key, reused
