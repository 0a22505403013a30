"""The results format: one JSON file per grid cell, one writer and one reader.

Every result holds

* ``experiment``: the grid job that wrote it (``registry.GRID_JOBS``);
* ``profile`` and ``cell``: the profile's name and the cell's id;
* ``config_hash``: everything that determined it (``profiles.cell_hash``); the grid
  skips a cell whose result carries the hash it expects;
* ``params``: the cell's fields;
* ``metrics``: the summary numbers, with exactly the keys ``METRICS`` lists;
* ``provenance``: what produced it (``run.provenance``);

and exactly the experiment's own parts, which ``PARTS`` lists:

* density: ``settings`` (the profile's density section), ``test_correct`` (per-image
  outcomes on the test images, packed bits) and ``history`` (per-epoch curves);
* adversarial: ``model_key`` (its checkpoint), ``n_params``, ``correct`` (packed
  per-image outcomes on the attacked images: clean, each fine-tuned model's clean,
  per reading and attack, the placebo fine-tune's transfer reading, AutoAttack, and
  untargeted PGD and AutoAttack at each endpoint radius), ``per_image`` (DeepFool's
  ||r||/||x|| per image, before and after fine-tuning), ``history`` and
  ``finetune_history`` (per attack, and the placebo's);
* attribution: ``model_key``, ``checkpoint_reused`` and ``per_image`` (per-image
  values of each stability measure; null where a map was flat and left out);
* deepfool_check: nothing more.

NaN and infinity are stored as null. The notebooks build results with
:func:`cell_result` and write them with :func:`write_result`; the grid, the book and
the report modules read them with :func:`load_results`, which returns only results
that match this schema.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from paperlib.core.registry import GRID_JOBS
from paperlib.core.settings import Profile, as_dict
from paperlib.run.profiles import cell_hash
from paperlib.run.store import finite, output_root, read_json, result_path, safe_id, write_json

COMMON = ("experiment", "profile", "cell", "config_hash", "params", "metrics", "provenance")
PARTS = {
    "density": ("settings", "test_correct", "history"),
    "adversarial": (
        "model_key",
        "n_params",
        "correct",
        "per_image",
        "history",
        "finetune_history",
    ),
    "attribution": ("model_key", "checkpoint_reused", "per_image"),
    "deepfool_check": (),
}
METRICS = {
    "density": (
        "average_density",
        "average_density_ci",
        "test_accuracy",
        "test_accuracy_ci",
        "train_accuracy",
        "val_accuracy",
        "predicted_counts",
    ),
    "adversarial": (
        "clean",
        "sparsity",
        "undefended",
        "defended",
        "standard_eps",
        "eps_sweep",
        "autoattack",
        "endpoints",
        "placebo",
        "cross_attack",
        "audit",
    ),
    "attribution": (
        "occlusion_ssd",
        "gradcam_ssd",
        "occlusion_spearman",
        "gradcam_spearman",
        "occlusion_topk",
        "gradcam_topk",
        "gradcam_sensitivity",
        "patch_sweep",
        "sigma_sweep",
        "accuracy_on_images",
        "clean_accuracy",
        "predicted_counts",
    ),
    "deepfool_check": ("implementations", "images", "correct_before"),
}


class ResultError(ValueError):
    """A result does not follow the schema. The message names the keys at fault."""


def cell_result(
    experiment: str,
    profile: Profile,
    cell: Any,
    data: str,
    *,
    metrics: dict,
    provenance: dict,
    **parts: Any,
) -> dict:
    """One cell's result, checked against the schema, exactly as it will read back.

    ``data`` names the CIFAR-10 copy (``splits.data_identity``); ``parts`` are the
    experiment's own parts (``PARTS``).
    """
    result = {
        "experiment": experiment,
        "profile": profile.name,
        "cell": cell.cell_id,
        "config_hash": cell_hash(profile, experiment, cell, data),
        "params": as_dict(cell),
        "metrics": metrics,
        "provenance": provenance,
        **parts,
    }
    check_result(result)
    return json.loads(json.dumps(finite(result)))


def check_result(result: Any, where: str = "result") -> None:
    """Raise :class:`ResultError` unless ``result`` has exactly the schema's keys."""
    if not isinstance(result, dict):
        raise ResultError(f"{where}: expected a JSON object, got {type(result).__name__}")
    experiment = result.get("experiment")
    if experiment not in GRID_JOBS:
        raise ResultError(f"{where}: unknown experiment {experiment!r}; one of {GRID_JOBS}")
    _exact_keys(result, (*COMMON, *PARTS[experiment]), where)
    if not isinstance(result["metrics"], dict):
        raise ResultError(f"{where}: metrics must be a mapping")
    _exact_keys(result["metrics"], METRICS[experiment], f"{where}: metrics")


def _exact_keys(mapping: dict, expected: tuple, where: str) -> None:
    missing = [k for k in expected if k not in mapping]
    unknown = sorted(set(mapping) - set(expected))
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}" if missing else ""]
        problems += [f"unknown {', '.join(unknown)}" if unknown else ""]
        raise ResultError(f"{where}: {'; '.join(p for p in problems if p)}")


def write_result(result: dict) -> Path:
    """Check ``result`` and write it atomically to its place under ``results/``."""
    check_result(result)
    path = result_path(result["profile"], result["experiment"], result["cell"])
    write_json(path, result)
    return path


def read_result(path: Path) -> dict | None:
    """The result at ``path``, or None if it is missing, unreadable or off the schema.

    A file that cannot be used is reported and left for a rerun to replace; it is never
    returned.
    """
    result = read_json(path)
    if result is None:
        return None
    try:
        check_result(result, where=str(path))
    except ResultError as err:
        warnings.warn(f"ignoring result ({err}); the cell will be recomputed", stacklevel=2)
        return None
    return result


def is_done(path: Path, expected_hash: str) -> bool:
    result = read_result(path)
    return result is not None and result["config_hash"] == expected_hash


def load_results(profile: str, experiment: str) -> list[dict]:
    """Every usable result of one experiment in one profile, in file-name order."""
    folder = output_root() / "results" / safe_id(profile) / safe_id(experiment)
    results = (read_result(p) for p in sorted(folder.glob("*.json")))
    return [r for r in results if r is not None]
