"""The settings' schema: frozen dataclasses for profiles and grid cells, and their checks.

Every value is checked before any compute: an unknown key, a wrong type or a value
out of range raises :class:`ConfigError`, whose message names the file and the key.
Reading the YAML files in ``params/`` is ``paperlib.run.profiles``' job.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from paperlib.core.registry import (
    ARCHITECTURES,
    AUTOATTACK_COMPONENTS,
    GRID_JOBS,
    OPTIMIZERS,
    PAPER_PENALTY,
    REGULARIZERS,
)

IMAGE_SIDE = 32  # CIFAR-10 images are 32 x 32 pixels


class ConfigError(ValueError):
    """A profile, grid or parameter is invalid. The message says where and why."""


def _min(value: float) -> dict:
    return {"min": value}


def _choices(*names: str) -> dict:
    return {"choices": names}


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # local CIFAR-10 copy; None = torchvision root under data/
    download: bool = False  # let torchvision download when path is None
    synthetic_fallback: bool = False  # smoke only: synthetic images when no copy is found


@dataclass(frozen=True)
class DensityConfig:
    """Experiment 1: the single-layer CNN trained with an activation L1 penalty."""

    train_size: int = field(default=50_000, metadata=_min(10))  # images, stratified
    val_size: int = field(default=5_000, metadata=_min(10))  # held out of the train split
    test_size: int = field(default=10_000, metadata=_min(10))  # density and accuracy
    epochs: int = field(default=10, metadata=_min(1))
    batch_size: int = field(default=128, metadata=_min(1))
    optimizer: str = field(default="adam", metadata=_choices(*OPTIMIZERS))  # Keras' default
    lr: float = field(default=1e-3, metadata=_min(0.0))  # Adam, Keras' default rate
    augment: bool = False  # random crop and flip on the device; the paper names none
    compile: bool = False  # torch.compile the training step (faster on a GPU)


@dataclass(frozen=True)
class AttackConfig:
    """Attack settings. Defaults are ART's, the library the paper used (our assumption)."""

    fgsm_eps: float = field(default=0.3, metadata=_min(0.0))  # L-inf, pixel scale [0,1]
    pgd_eps: float = field(default=0.3, metadata=_min(0.0))  # L-inf, pixel scale [0,1]
    pgd_step: float = field(default=0.1, metadata=_min(0.0))  # L-inf step per iteration
    pgd_steps: int = field(default=100, metadata=_min(1))
    pgd_targeted: bool = True  # the paper describes PGD as targeted (random target class)
    deepfool_steps: int = field(default=100, metadata=_min(1))
    deepfool_overshoot: float = field(default=1e-6, metadata=_min(0.0))
    deepfool_candidates: int = field(default=10, metadata={"min": 2, "max": 10})  # classes
    # The standard evaluation beside ART's settings: untargeted PGD from a random start.
    standard_steps: int = field(default=20, metadata=_min(1))  # iterations, step eps / 4
    standard_restarts: int = field(default=1, metadata=_min(1))  # worst of this many runs
    # AutoAttack at standard_eps: these components, in this order, each on the images the
    # earlier ones left correct. All four is the standard version; fewer is a subset.
    autoattack: list[str] = field(
        default_factory=lambda: list(AUTOATTACK_COMPONENTS),
        metadata=_choices(*AUTOATTACK_COMPONENTS),
    )
    autoattack_steps: int = field(default=100, metadata=_min(1))  # APGD and FAB iterations
    square_queries: int = field(default=5000, metadata=_min(1))  # Square's query budget
    batch_size: int = field(default=250, metadata=_min(1))  # images attacked per call


@dataclass(frozen=True)
class AuditConfig:
    """The gradient-masking audit (Carlini et al. 2019): what counts as a failed check."""

    alpha: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})  # per check, Bonferroni
    near_zero: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})  # "about 0"
    # The most accuracy Square may take beyond the gradient-based attacks of AutoAttack.
    gradient_free_margin: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})


@dataclass(frozen=True)
class EligibilityConfig:
    """Which models may decide a claim (``paperlib.report.verdicts``): below any of these a
    model has collapsed or lost too much, and the comparison is "not testable"."""

    min_accuracy: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})  # clean, [0, 1]
    # Normalized entropy of the predicted classes: 0 = one class for every image.
    min_prediction_entropy: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # Against its base model: the most clean accuracy (points) a model may lose.
    max_accuracy_drop: float = field(default=5.0, metadata=_min(0.0))


@dataclass(frozen=True)
class AdversarialConfig:
    """Experiment 2: train, attack, adversarially fine-tune, attack again."""

    train_size: int = field(default=45_000, metadata=_min(10))  # clean training images
    val_size: int = field(default=5_000, metadata=_min(10))  # for the training curves
    test_size: int = field(default=10_000, metadata=_min(10))  # clean accuracy is measured here
    eval_size: int = field(default=500, metadata=_min(10))  # attacked: the first of test_size
    adv_train_size: int = field(default=5_000, metadata=_min(10))  # crafted per attack
    epochs: int = field(default=30, metadata=_min(1))
    finetune_epochs: int = field(default=5, metadata=_min(1))
    batch_size: int = field(default=128, metadata=_min(1))
    # The paper names no optimizer. SGD with Nesterov momentum and a one-cycle schedule
    # is the usual CIFAR recipe; no weight decay, since the kernel penalty under study
    # is the only regularizer. "adam" (constant rate) is the alternative.
    optimizer: str = field(default="sgd", metadata=_choices(*OPTIMIZERS))
    lr: float = field(default=0.1, metadata=_min(0.0))  # peak rate of the one-cycle schedule
    finetune_lr: float = field(default=0.01, metadata=_min(0.0))  # peak rate when fine-tuning
    augment: bool = True  # random crop and flip on the device; the paper names none
    compile: bool = False  # torch.compile the training step (faster on a GPU)
    width: dict[str, float] = field(  # channel multiplier per architecture; 1.0 = standard
        default_factory=lambda: dict.fromkeys(ARCHITECTURES, 1.0),
        metadata={"min": 0.01, "keys": ARCHITECTURES},
    )
    standard_eps: float = field(default=8 / 255, metadata=_min(0.0))  # extra FGSM/PGD check
    sweep_eps: list[float] = field(  # L-inf radii of the FGSM/PGD sweep on the clean model
        default_factory=lambda: [1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 0.3],
        metadata=_min(0.0),
    )
    # Radii (L-inf) where untargeted PGD and AutoAttack are both scored image by image:
    # endpoints small enough that attacked models are not all at 0 %.
    endpoint_eps: list[float] = field(
        default_factory=lambda: [2 / 255, 4 / 255], metadata=_min(0.0)
    )
    attacks: AttackConfig = AttackConfig()
    audit: AuditConfig = AuditConfig()


@dataclass(frozen=True)
class AttributionConfig:
    """Experiment 3: how much attribution maps move when a setting or the input changes."""

    n_images: int = field(default=1000, metadata=_min(1))  # random test images compared
    patch: int = field(default=4, metadata=_min(1))  # occlusion patch side, pixels
    patch_small: int = field(default=2, metadata=_min(1))  # the patch it is compared with
    stride: int = field(default=2, metadata=_min(1))  # occlusion stride, pixels
    sigma: float = field(default=0.5, metadata=_min(0.0))  # Gaussian blur before Grad-CAM
    patch_sweep: list[int] = field(default_factory=lambda: [2, 4, 6, 8], metadata=_min(1))
    sigma_sweep: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0], metadata=_min(0.0))
    batch_size: int = field(default=100, metadata=_min(1))  # images per occlusion call
    perturbations_per_eval: int = field(default=32, metadata=_min(1))  # patches per forward
    figure_images: int = field(default=4, metadata=_min(1))  # examples drawn like Figs. 4-5
    # Beyond the paper: the top-k pixels two maps share (Ghorbani et al. 2019), and
    # captum's max-sensitivity of Grad-CAM (Yeh et al. 2019) in an L-inf ball.
    top_k: int = field(default=100, metadata={"min": 1, "max": IMAGE_SIDE**2})  # pixels
    sensitivity_radius: float = field(default=0.02, metadata=_min(0.0))
    sensitivity_samples: int = field(default=10, metadata=_min(1))


# The environment variable in which the grid tells each worker how many cells share its
# GPU; the memory budget of each stage divides the GPU among them (core.memory).
CELLS_PER_GPU_ENV = "PAPERLIB_CELLS_PER_GPU"


@dataclass(frozen=True)
class GridConfig:
    """How the grid runs on this machine. It never changes a result, so it is not hashed."""

    # Cells run at once on a machine without a GPU (`--workers` overrides). None: 1.
    workers: int | None = field(default=None, metadata=_min(1))
    # Cells that share one GPU, on a machine with GPUs: it runs this many per GPU, and
    # the plan and the memory budget assume as many (`--workers` overrides).
    workers_per_gpu: int = field(default=1, metadata=_min(1))
    # Wall time the profile's grids may take end to end on the machine it is meant for
    # (the Performance page sets the measured time beside it); None: no target.
    budget_minutes: float | None = field(default=None, metadata=_min(1.0))

    def workers_here(self, gpus: int) -> int:
        """Cells at once on a machine with ``gpus`` visible GPUs."""
        return gpus * self.workers_per_gpu if gpus else self.workers or 1


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    data: DataConfig = DataConfig()
    grid: GridConfig = GridConfig()
    density: DensityConfig = DensityConfig()
    adversarial: AdversarialConfig = AdversarialConfig()
    attribution: AttributionConfig = AttributionConfig()
    testable: EligibilityConfig = EligibilityConfig()


@dataclass(frozen=True)
class DensityCell:
    """One grid cell of experiment 1: a lambda and a training seed."""

    activity_l1: float = field(default=0.0, metadata=_min(0.0))  # lambda in Eq. 5
    seed: int = field(default=0, metadata=_min(0))  # initialization and shuffling

    @property
    def cell_id(self) -> str:
        # repr round-trips: distinct lambdas, distinct ids
        return f"lambda-{self.activity_l1!r}-s{self.seed}"


@dataclass(frozen=True)
class AdversarialCell:
    """One grid cell of experiment 2: an architecture, a regularizer, its strength, a seed.

    ``penalty`` is c in c*sum|W| and c*sum W^2 (the paper's ``PAPER_PENALTY``); ``base`` has none.
    """

    arch: str = field(default="vgg16", metadata=_choices(*ARCHITECTURES))
    regularizer: str = field(default="base", metadata=_choices(*REGULARIZERS))
    penalty: float = field(default=0.0, metadata=_min(0.0))
    seed: int = field(default=0, metadata=_min(0))

    @property
    def cell_id(self) -> str:
        if self.regularizer == "base":
            return f"{self.arch}-base-s{self.seed}"
        return f"{self.arch}-{self.regularizer}-c{self.penalty!r}-s{self.seed}"


@dataclass(frozen=True)
class DeepFoolCheckCell:
    """The check of our batched DeepFool against torchattacks': an architecture's
    clean-trained base model (experiment 2's checkpoint) and a number of test images."""

    arch: str = field(default="vgg16", metadata=_choices(*ARCHITECTURES))
    # torchattacks' DeepFool computes a Jacobian image by image: slow on a CPU.
    n_images: int = field(default=40, metadata=_min(1))

    @property
    def cell_id(self) -> str:
        return f"{self.arch}-n{self.n_images}"


def check_penalty(cell: AdversarialCell, where: str) -> None:
    """A base model has no penalty; a regularized one needs a strength above zero."""
    if cell.regularizer == "base" and cell.penalty != 0:
        raise ConfigError(f"{where}: the base model has no penalty; got penalty={cell.penalty!r}")
    if cell.regularizer != "base" and cell.penalty <= 0:
        raise ConfigError(
            f"{where}: regularizer {cell.regularizer!r} needs a penalty > 0 "
            f"(the paper's is {PAPER_PENALTY}); got {cell.penalty!r}"
        )


# (smaller key, larger key, why): sizes one profile section draws out of another.
NESTED_SIZES = (
    (
        "adversarial.eval_size",
        "adversarial.test_size",
        "the attacked images are the first of the test images",
    ),
    (
        "adversarial.adv_train_size",
        "adversarial.train_size",
        "the crafted images are drawn from the training images",
    ),
    (
        "attribution.n_images",
        "adversarial.test_size",
        "the attributed images are drawn from the test images",
    ),
    (
        "attribution.figure_images",
        "attribution.n_images",
        "the figure shows some of the attributed images",
    ),
)


def check_sizes(profile: Profile, where: str) -> None:
    """Each size drawn out of another fits in it. Slicing would cut it short without a
    word, while the plan still priced the full amount."""
    for small, large, why in NESTED_SIZES:
        values = [
            getattr(getattr(profile, key.split(".")[0]), key.split(".")[1])
            for key in (small, large)
        ]
        if values[0] > values[1]:
            raise ConfigError(
                f"{where}: {small} ({values[0]}) exceeds {large} ({values[1]}): {why}; "
                f"lower {small} or raise {large}"
            )


def check_occlusion(cfg: AttributionConfig, where: str) -> None:
    """Every occlusion patch fits in a 32 x 32 image and is at least the stride.

    A stride wider than the patch would leave pixels no patch covers: captum refuses
    that with a bare assertion, deep inside a cell, after its model has trained.
    """
    patches = {
        "patch": [cfg.patch],
        "patch_small": [cfg.patch_small],
        "patch_sweep": cfg.patch_sweep,
    }
    for key, sides in patches.items():
        for side in sides:
            if side > IMAGE_SIDE:
                raise ConfigError(
                    f"{where}: attribution.{key}: a patch of {side} pixels does not fit "
                    f"in a {IMAGE_SIDE} x {IMAGE_SIDE} image"
                )
            if side < cfg.stride:
                raise ConfigError(
                    f"{where}: attribution.{key} ({side}) is smaller than "
                    f"attribution.stride ({cfg.stride}), so some pixels would never be "
                    f"occluded; use a stride of at most {side}"
                )


# Experiment 3 explains experiment 2's clean-trained models: the same cells.
CELL_TYPES = dict(
    zip(
        GRID_JOBS,
        (DensityCell, AdversarialCell, AdversarialCell, DeepFoolCheckCell),
        strict=True,
    )
)


def make_cell(experiment: str, params: dict[str, Any], where: str = "parameters") -> Any:
    """Validate one cell's parameters (from the grid, papermill or a notebook)."""
    if experiment not in CELL_TYPES:
        hint = did_you_mean(experiment, list(CELL_TYPES))
        raise ConfigError(f"{where}: unknown experiment {experiment!r}{hint}")
    cell = from_dict(CELL_TYPES[experiment], params, where=where)
    if isinstance(cell, AdversarialCell):
        check_penalty(cell, where)
    return cell


def from_dict(cls: type, raw: Any, where: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys, types and ranges."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            hint = did_you_mean(key, list(fields))
            raise ConfigError(f"{where}: unknown key {prefix + str(key)!r}{hint}")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing key {prefix + name!r}")
            continue
        values[name] = _check(hints[name], raw[name], f, where, prefix + name)
    return cls(**values)


def _check(hint: Any, value: Any, f: dataclasses.Field, where: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where, prefix=key + ".")
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    expected = next(t for t in allowed if t is not type(None))
    value = _coerce(expected, value, where, key)
    if isinstance(value, dict):  # a mapping's keys are the names, its values the numbers
        _check_names(list(value), f.metadata.get("keys"), where, key)
        items = value.values()
    else:
        _check_names(
            value if isinstance(value, list) else [value], f.metadata.get("choices"), where, key
        )
        items = value if isinstance(value, list) else [value]
    for item in items:
        _check_range(item, f.metadata, where, key)
    return value


def _check_range(value: Any, limits: Any, where: str, key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
    minimum, maximum = limits.get("min"), limits.get("max")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: {key} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: {key} must be <= {maximum}, got {value!r}")


def _check_names(values: list, allowed: tuple | None, where: str, key: str) -> None:
    for value in values:
        if allowed is not None and value not in allowed:
            hint = did_you_mean(value, list(allowed))
            raise ConfigError(
                f"{where}: {key}: unknown {value!r}{hint}; choose from {list(allowed)}"
            )


def _coerce(expected: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(expected)
    if origin is list:
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}: {key}: expected a non-empty list, got {value!r}")
        (item,) = typing.get_args(expected)
        return [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {value!r}")
        _, item = typing.get_args(expected)
        return {k: _coerce(item, v, where, f"{key}.{k}") for k, v in value.items()}
    # YAML reads 1e-5 (no dot) as a string; accept numeric strings for floats only.
    if expected is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(
            f"{where}: {key}: expected {expected.__name__}, got {type(value).__name__} ({value!r})"
        )
    return value


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def as_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)
