"""The results format: one JSON file per grid cell, one writer and one reader.

Every result holds

* ``experiment``: the grid job that wrote it (``registry.GRID_JOBS``);
* ``profile`` and ``cell``: the profile's name and the cell's id;
* ``config_hash``: everything that determined it (``profiles.cell_hash``); the grid
  skips a cell whose result carries the hash it expects;
* ``params``: the cell's fields;
* ``metrics``: the summary numbers, the experiment's record in ``METRICS_RECORDS``
  (checked in depth, field by field);
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
that match this schema, as typed :class:`Result` records.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

from paperlib.core.records import (
    AttackReport,
    AuditCheck,
    AutoAttackReport,
    Interval,
    RecordError,
    SparsityReport,
    StabilitySummary,
    as_json,
    parse,
)
from paperlib.core.registry import GRID_JOBS
from paperlib.core.settings import ConfigError, Profile, as_dict, make_cell
from paperlib.run.profiles import cell_hash
from paperlib.run.provenance import Provenance
from paperlib.run.store import finite, output_root, read_json, result_path, safe_id, write_json

IDENTITY = ("experiment", "profile", "cell", "config_hash")
COMMON = (*IDENTITY, "params", "metrics", "provenance")
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


@dataclasses.dataclass(frozen=True)
class DensityMetrics:
    """Experiment 1: the hidden layer's density and the model's accuracy."""

    average_density: float
    average_density_ci: Interval
    test_accuracy: float
    test_accuracy_ci: Interval
    train_accuracy: float
    val_accuracy: float
    predicted_counts: list[int]


@dataclasses.dataclass(frozen=True)
class CleanMetrics:
    """The clean-trained model before any attack."""

    accuracy: float  # on all the test images
    predicted_counts: list[int]
    accuracy_ci: Interval
    test_size: int
    accuracy_on_attacked: float  # on the attacked images, the first of the test images
    val_accuracy: float  # held out of training: what picks a primary strength
    train_accuracy: float


@dataclasses.dataclass(frozen=True)
class DefendedReport(AttackReport):
    """An attack on the model fine-tuned against it: white-box (the report's own fields)
    and transfer (the images crafted against the clean model)."""

    clean_accuracy: float
    accuracy_ci: Interval
    transfer_accuracy: float
    transfer_accuracy_ci: Interval


@dataclasses.dataclass(frozen=True)
class StandardEps:
    """FGSM and untargeted PGD at the standard radius (8/255)."""

    eps: float
    fgsm: AttackReport
    pgd: AttackReport


@dataclasses.dataclass(frozen=True)
class EpsSweep:
    """Accuracy under FGSM and untargeted PGD at each radius of ``eps``."""

    eps: list[float]
    fgsm: list[float]
    pgd: list[float]


@dataclasses.dataclass(frozen=True)
class AutoAttackAtEps(AutoAttackReport):
    """AutoAttack at the radius ``eps``."""

    eps: float


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Accuracy under untargeted PGD and AutoAttack at each endpoint radius of ``eps``."""

    eps: list[float]
    pgd: list[float]
    autoattack: list[float]


@dataclasses.dataclass(frozen=True)
class Placebo:
    """The clean fine-tune: its clean accuracy and its transfer reading per attack."""

    clean_accuracy: float
    transfer_accuracy: dict[str, float]


@dataclasses.dataclass(frozen=True)
class CrossAttack:
    """A fine-tuned model under one attack, in both readings."""

    accuracy: float
    transfer_accuracy: float


@dataclasses.dataclass(frozen=True)
class Audit:
    """The gradient-masking audit: per model, per check; ``failures`` as "model: check"."""

    checks: dict[str, dict[str, AuditCheck]]
    failures: list[str]


@dataclasses.dataclass(frozen=True)
class AdversarialMetrics:
    """Experiment 2: one model, attacked before and after adversarial fine-tuning."""

    clean: CleanMetrics
    sparsity: SparsityReport
    undefended: dict[str, AttackReport]  # per attack of the paper
    defended: dict[str, DefendedReport]  # per attack fine-tuned against and attacked with
    standard_eps: StandardEps
    eps_sweep: EpsSweep
    autoattack: AutoAttackAtEps
    endpoints: Endpoints
    placebo: Placebo
    cross_attack: dict[str, dict[str, CrossAttack]]  # trained against -> attacked with
    audit: Audit


@dataclasses.dataclass(frozen=True)
class AttributionMetrics:
    """Experiment 3: how much the attribution maps change under a small perturbation."""

    occlusion_ssd: StabilitySummary
    gradcam_ssd: StabilitySummary
    occlusion_spearman: StabilitySummary
    gradcam_spearman: StabilitySummary
    occlusion_topk: StabilitySummary
    gradcam_topk: StabilitySummary
    gradcam_sensitivity: StabilitySummary
    patch_sweep: dict[str, StabilitySummary]  # occlusion SSD per patch size
    sigma_sweep: dict[str, StabilitySummary]  # per blur sigma
    accuracy_on_images: float
    clean_accuracy: float
    predicted_counts: list[int]


@dataclasses.dataclass(frozen=True)
class DeepfoolCheckMetrics:
    """The DeepFool check: our batched DeepFool beside torchattacks' on one model."""

    implementations: list[dict[str, Any]]  # a row per implementation, as displayed
    images: int
    correct_before: int


METRICS_RECORDS = {
    "density": DensityMetrics,
    "adversarial": AdversarialMetrics,
    "attribution": AttributionMetrics,
    "deepfool_check": DeepfoolCheckMetrics,
}
METRICS = {
    experiment: tuple(f.name for f in dataclasses.fields(record))
    for experiment, record in METRICS_RECORDS.items()
}


class ResultError(RecordError):
    """A result does not follow the schema. The message names the keys at fault."""


@dataclasses.dataclass(frozen=True)
class Result:
    """One cell's result as the report layer reads it: ``params`` is the experiment's
    cell (``settings.CELL_TYPES``), ``metrics`` its record (``METRICS_RECORDS``) and
    ``provenance`` a :class:`Provenance`. The experiment's own parts (``PARTS``) are
    plain JSON; the parts of the other experiments are None."""

    experiment: str
    profile: str
    cell: str
    config_hash: str
    params: Any
    metrics: Any
    provenance: Provenance
    settings: dict | None = None
    test_correct: Any = None
    history: Any = None
    model_key: str | None = None
    n_params: int | None = None
    correct: dict | None = None
    per_image: dict | None = None
    finetune_history: dict | None = None
    checkpoint_reused: bool | None = None


def cell_result(
    experiment: str,
    profile: Profile,
    cell: Any,
    data: str,
    *,
    metrics: Any,
    provenance: Provenance,
    **parts: Any,
) -> Result:
    """One cell's result, checked against the schema, exactly as it will read back.

    ``data`` names the CIFAR-10 copy (``splits.data_identity``); ``parts`` are the
    experiment's own parts (``PARTS``).
    """
    stored = {
        "experiment": experiment,
        "profile": profile.name,
        "cell": cell.cell_id,
        "config_hash": cell_hash(profile, experiment, cell, data),
        "params": as_dict(cell),
        "metrics": as_json(metrics),
        "provenance": as_json(provenance),
        **parts,
    }
    return parse_result(_as_stored(stored))


def _as_stored(stored: dict) -> dict:
    """``stored`` exactly as it reads back from its file: NaN becomes null."""
    return json.loads(json.dumps(finite(stored)))


def parse_result(stored: Any, where: str = "result") -> Result:
    """The result in ``stored`` (its JSON), checked in depth: exactly the schema's keys,
    metrics that fit the experiment's record, valid cell parameters and provenance.
    :class:`ResultError` names the field at fault."""
    if not isinstance(stored, dict):
        raise ResultError(f"{where}: expected a JSON object, got {type(stored).__name__}")
    experiment = stored.get("experiment")
    if experiment not in GRID_JOBS:
        raise ResultError(f"{where}: unknown experiment {experiment!r}; one of {GRID_JOBS}")
    _exact_keys(stored, (*COMMON, *PARTS[experiment]), where)
    try:
        params = make_cell(experiment, stored["params"], where=f"{where}: params")
        return Result(
            **{key: stored[key] for key in (*IDENTITY, *PARTS[experiment])},
            params=params,
            metrics=parse(METRICS_RECORDS[experiment], stored["metrics"], f"{where}: metrics"),
            provenance=parse(Provenance, stored["provenance"], f"{where}: provenance"),
        )
    except (RecordError, ConfigError) as err:
        raise ResultError(str(err)) from None


def result_json(result: Result) -> dict:
    """``result`` as its file stores it: the common keys and the experiment's parts."""
    return {key: as_json(getattr(result, key)) for key in (*COMMON, *PARTS[result.experiment])}


def _exact_keys(mapping: dict, expected: tuple, where: str) -> None:
    missing = [k for k in expected if k not in mapping]
    unknown = sorted(set(mapping) - set(expected))
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}" if missing else ""]
        problems += [f"unknown {', '.join(unknown)}" if unknown else ""]
        raise ResultError(f"{where}: {'; '.join(p for p in problems if p)}")


def write_result(result: Result) -> Path:
    """Write ``result`` atomically to its place under ``results/``. It is checked again
    first, so that a result changed after it was built cannot leave a file that does not
    read back."""
    stored = _as_stored(result_json(result))
    parse_result(stored)
    path = result_path(result.profile, result.experiment, result.cell)
    write_json(path, stored)
    return path


def read_result(path: Path) -> Result | None:
    """The result at ``path``, or None if it is missing, unreadable or off the schema.

    A file that cannot be used is reported and left for a rerun to replace; it is never
    returned.
    """
    stored = read_json(path)
    if stored is None:
        return None
    try:
        return parse_result(stored, where=str(path))
    except ResultError as err:
        warnings.warn(f"ignoring result ({err}); the cell will be recomputed", stacklevel=2)
        return None


def is_done(path: Path, expected_hash: str) -> bool:
    result = read_result(path)
    return result is not None and result.config_hash == expected_hash


def explains_attacked_model(attribution: Result, adversarial: Result) -> bool:
    """Whether an attribution result explains the model its adversarial cell attacked.
    Both cells measure the same test images, so one model gives both the same
    predictions per class and the same clean accuracy. Experiment 3 reuses experiment 2's
    checkpoint; where that was missing it trained the model again, and on a machine with
    other vector instructions the same seed can give another model."""
    clean = adversarial.metrics.clean
    return (
        attribution.metrics.predicted_counts == clean.predicted_counts
        and abs(attribution.metrics.clean_accuracy - clean.accuracy) < 0.5 / clean.test_size
    )


def unpaired_attributions(attribution: list[Result], adversarial: list[Result]) -> list[str]:
    """The cells whose attribution result explains another model than the adversarial
    result of the same cell attacked (cells with both results)."""
    attacked = {r.cell: r for r in adversarial}
    return [
        r.cell
        for r in attribution
        if r.cell in attacked and not explains_attacked_model(r, attacked[r.cell])
    ]


def load_results(profile: str, experiment: str) -> list[Result]:
    """Every usable result of one experiment in one profile, in file-name order."""
    folder = output_root() / "results" / safe_id(profile) / safe_id(experiment)
    results = (read_result(p) for p in sorted(folder.glob("*.json")))
    return [r for r in results if r is not None]
