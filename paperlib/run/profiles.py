"""Profiles and grids: the YAML files in ``params/``, read into validated settings.

The schema and its checks live in ``paperlib.core.settings``; this module finds the
files, merges a profile with the one it extends, expands grids into cells, and hashes
what determines a cell's result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from paperlib.core.settings import (
    CELL_TYPES,
    AdversarialCell,
    ConfigError,
    Profile,
    as_dict,
    check_occlusion,
    check_sizes,
    did_you_mean,
    from_dict,
    make_cell,
)
from paperlib.run.store import config_hash

# The profiles and grids; PAPERLIB_PARAMS points a run (and the kernels it starts) at
# another folder of them, as the paper profile's dry run in the tests does.
PARAMS_DIR = Path(
    os.environ.get("PAPERLIB_PARAMS") or Path(__file__).resolve().parents[2] / "params"
)


# The profile sections a cell's result depends on (attribution: the trained model too).
HASHED_SECTIONS = {
    "density": ("density",),
    "adversarial": ("adversarial", "testable"),  # the audit skips collapsed models
    "attribution": ("adversarial", "attribution"),
    "deepfool_check": ("adversarial",),  # the base model and the attack's settings
}


def cell_hash(profile: Profile, experiment: str, cell: Any, data: str) -> str:
    """Hash of everything that determines a cell's result; see ``results.is_done``.

    ``data`` names the CIFAR-10 copy (``splits.data_identity``), so switching copies
    recomputes the grid.
    """
    payload = {
        "data": data,
        "experiment": experiment,
        "settings": {s: as_dict(getattr(profile, s)) for s in HASHED_SECTIONS[experiment]},
        "cell": as_dict(cell),
    }
    return config_hash(payload)


def clean_model_config(profile: Profile, cell: AdversarialCell, data: str) -> dict[str, Any]:
    """Everything that shapes a clean-trained experiment-2 model: its checkpoint key.

    Experiment 3 computes the same dict to find the checkpoint and reuse it.
    """
    cfg = profile.adversarial
    return {
        "arch": cell.arch,
        "width": cfg.width.get(cell.arch, 1.0),
        "regularizer": cell.regularizer,
        "penalty": cell.penalty,
        "train_size": cfg.train_size,
        "val_size": cfg.val_size,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "augment": cfg.augment,  # not `compile`: it changes how fast, not what is learned
        "seed": cell.seed,
        "data": data,
    }


# The files of params/ that are not profiles: the grids, the analysis plan and the
# list of cell-behaviour changes.
NOT_PROFILES = ("grids", "analysis", "cell_behaviour")


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml") if p.stem not in NOT_PROFILES)


def load_profile(name: str, overrides: dict[str, Any] | None = None) -> Profile:
    """Load ``params/<name>.yaml``; ``overrides`` maps dotted keys to values."""
    names = available_profiles()
    if name not in names:
        hint = did_you_mean(name, names)
        raise ConfigError(f"unknown profile {name!r}{hint}; available profiles: {', '.join(names)}")
    path = PARAMS_DIR / f"{name}.yaml"
    raw = _read_yaml(path)
    base = raw.pop("extends", None)
    if base is not None:
        # A profile may restate another with a few changes: its keys win, section by section.
        if base == name or base not in names:
            raise ConfigError(f"{path.name}: extends {base!r}, which is not another profile")
        raw = merged(_read_yaml(PARAMS_DIR / f"{base}.yaml"), raw)
    raw.setdefault("name", name)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, where="override")
    where = str(path.relative_to(PARAMS_DIR.parent))
    profile = from_dict(Profile, raw, where=where)
    check_occlusion(profile.attribution, where)
    check_sizes(profile, where)
    return profile


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it; nested mappings merge, other values replace."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


# Experiment 3 explains experiment 2's models, cell for cell: it has no grid of its own.
GRID_OF = {
    "density": "density",
    "adversarial": "adversarial",
    "attribution": "adversarial",
    "deepfool_check": "deepfool_check",
}


def load_grid(experiment: str, profile: str | None = None) -> list[Any]:
    """Expand ``params/grids.yaml`` for one experiment into a list of validated cells.

    An experiment's grid is a mapping of axes (their product is the grid) or a list of
    such mappings (the union of their products, in order). A profile may override axes
    under ``profiles: <name>: <experiment>:``; an override replaces that axis in every
    block that has it (the paper profile adds seeds, the cpu profile leaves out
    architectures, and a penalty override leaves the base block, which has no penalty
    axis, alone). A list there instead is the profile's own blocks, which replace the
    grid (the study's design has blocks of its own).
    """
    path = PARAMS_DIR / "grids.yaml"
    where = str(path.relative_to(PARAMS_DIR.parent))
    raw = _read_yaml(path)
    if experiment not in CELL_TYPES:
        hint = did_you_mean(experiment, list(CELL_TYPES))
        raise ConfigError(f"{where}: unknown experiment {experiment!r}{hint}")
    source = GRID_OF[experiment]
    blocks = raw.get(source)
    blocks = blocks if isinstance(blocks, list) else [blocks]
    overrides = ((raw.get("profiles") or {}).get(profile) or {}).get(source) or {}
    if isinstance(overrides, list):  # a profile's own blocks replace the whole grid
        blocks, overrides = overrides, {}
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"{where}: profiles.{profile}.{source}: expected a mapping of axes, or a list "
            "of blocks that replaces the grid"
        )
    axes_in_blocks = {key for block in blocks if isinstance(block, dict) for key in block}
    for key in overrides:
        if key not in axes_in_blocks:
            hint = did_you_mean(key, sorted(axes_in_blocks))
            raise ConfigError(
                f"{where}: profiles.{profile}.{source}.{key}: no block of the grid has "
                f"this axis{hint}"
            )
    cells: list[Any] = []
    for block in blocks:
        if block is not None and not isinstance(block, dict):
            raise ConfigError(
                f"{where}: {source}: a block must be a mapping of axes, got {block!r}"
            )
        if not block:
            raise ConfigError(f"{where}: {source}: the grid is empty; list at least one value")
        axes = {key: overrides.get(key, values) for key, values in block.items()}
        for cell in _expand(axes, where=f"{where}: {source}"):
            made = make_cell(experiment, cell, where=f"{where}: {source}")
            if made not in cells:
                cells.append(made)
    return cells


def _expand(axes: dict, where: str) -> list[dict]:
    """The product of the axes: one dict per combination, the last axis varying fastest."""
    cells: list[dict] = [{}]
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key}: expected a non-empty list of values")
        cells = [{**cell, key: value} for cell in cells for value in values]
    return cells


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def _set_dotted(raw: dict, dotted: str, value: Any, where: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {dotted}: {part!r} is not a section")
    node[leaf] = value
