"""The data a profile uses: which CIFAR-10 copy, and its seeded, stratified subsets."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from paperlib.core.data import (
    Cifar10,
    DataError,
    load_cifar10,
    stratified_indices,
    synthetic_cifar10,
)
from paperlib.core.settings import Profile
from paperlib.run.store import output_root

DATA_ENV = "PAPERLIB_DATA"  # a local CIFAR-10 copy for every run, e.g. set by `make DATA=...`
CACHE_ENV = "PAPERLIB_CACHE"  # where decoded copies are cached; default <output>/data/cache

SYNTHETIC_SIZES = (5000, 2000)  # train, test: enough for the smoke profile
Pair = tuple[torch.Tensor, torch.Tensor]  # (uint8 images, int64 labels)


@dataclass(frozen=True)
class Splits:
    train: Pair
    val: Pair  # held out of CIFAR-10's training split
    test: Pair
    source: str
    note: str


def resolve_data_path(profile: Profile, data_path: str | None = None) -> str | None:
    """The copy to read: ``data_path``, else ``$PAPERLIB_DATA``, else the profile's."""
    return data_path or os.environ.get(DATA_ENV) or profile.data.path


def data_identity(profile: Profile, data_path: str | None = None) -> str:
    """A machine-independent name for the copy a run reads, for the cell hash."""
    path = resolve_data_path(profile, data_path)
    return Path(path).name if path else "torchvision"


def load_profile_data(profile: Profile, data_path: str | None = None) -> Cifar10:
    """CIFAR-10 from ``data_path``, else ``$PAPERLIB_DATA``, else the profile's setting.

    With neither, torchvision's copy under ``data/`` is used (downloaded if the profile
    allows). Only a profile with ``synthetic_fallback`` falls back to synthetic images,
    and it says so loudly.
    """
    path = resolve_data_path(profile, data_path)
    root = output_root() / "data"
    cache = os.environ.get(CACHE_ENV)
    try:
        return load_cifar10(
            path,
            root=root,
            download=profile.data.download,
            cache_dir=Path(cache) if cache else None,
        )
    except DataError as err:
        if not profile.data.synthetic_fallback or path is not None:
            raise
        warnings.warn(
            f"{err}\nFalling back to SYNTHETIC images: numbers are not CIFAR-10's.", stacklevel=2
        )
        return synthetic_cifar10(*SYNTHETIC_SIZES, seed=0)


def make_splits(
    data: Cifar10, *, train_size: int, val_size: int, test_size: int, seed: int
) -> Splits:
    """Disjoint, class-balanced train and validation subsets, and a test subset."""
    train_idx = stratified_indices(data.train_labels, train_size, seed)
    val_idx = stratified_indices(data.train_labels, val_size, seed + 1, exclude=train_idx)
    test_idx = stratified_indices(data.test_labels, test_size, seed)
    return Splits(
        train=(data.train_images[train_idx], data.train_labels[train_idx]),
        val=(data.train_images[val_idx], data.train_labels[val_idx]),
        test=(data.test_images[test_idx], data.test_labels[test_idx]),
        source=data.source,
        note=data.note,
    )
