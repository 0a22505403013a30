"""Typed records: what a cell measures, field by field, as its result stores it.

Each record is a frozen dataclass whose fields are the keys of its JSON object, with
their types. :func:`parse` builds a record from JSON and checks it in depth: a missing
or unknown key, or a value of the wrong type, raises :class:`RecordError` naming the
path to it (``metrics.defended.fgsm.transfer_accuracy``). :func:`as_json` turns a
record back into the JSON it came from.

The records measured in ``paperlib.core`` (an attack's report, an audit check, a
stability summary, a sparsity report) live here, so that the functions that measure
them can return them; ``paperlib.run.results`` composes them into each experiment's
metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Union

# A 95% interval, (low, high); None where nothing was measured (no images to resample).
Interval = tuple[float | None, float | None]


class RecordError(ValueError):
    """JSON that does not fit its record. The message names the path to the fault."""


@dataclasses.dataclass(frozen=True)
class AttackReport:
    """One attack on one model: accuracy under attack, and on the images the model got
    right before it, the success rate, mean perturbation norms and DeepFool's ρ."""

    accuracy: float
    success_rate: float
    linf: float
    l2: float
    rho: float | None  # median ||r||/||x|| over the fooled images; None if none was
    rho_ci: Interval
    fooled: int
    not_fooled: int


@dataclasses.dataclass(frozen=True)
class AutoAttackReport(AttackReport):
    """AutoAttack's report: its components, and how many images each fooled first."""

    components: list[str]
    fooled_by: dict[str, int]


@dataclasses.dataclass(frozen=True)
class AuditCheck:
    """One gradient-masking check: passed, failed, or None where it was not run."""

    passed: bool | None
    detail: str


@dataclasses.dataclass(frozen=True)
class StabilitySummary:
    """Per-image stability values summarized over the images whose maps were not flat
    (``left_out`` counts the flat ones)."""

    mean: float | None
    std: float | None
    ci: Interval
    left_out: int


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """How sparse one model is: activation density (overall and per layer), the share
    of penalized weights below each threshold (keyed by the threshold) and Hoyer's
    measure."""

    activation_density: float
    activation_density_per_layer: dict[str, float]
    weight_sparsity: dict[str, float]
    hoyer: float
    hoyer_per_layer_mean: float


def as_json(value: Any) -> Any:
    """A record (or a mapping or list holding records) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def parse(kind: Any, value: Any, where: str) -> Any:
    """``value`` (JSON) as ``kind`` (a record class or a type such as ``dict[str, float]``),
    checked in depth; :class:`RecordError` names the first path at fault."""
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind):
        return _parse_record(kind, value, where)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # X | None is the only union
        return parse(inner, value, where)
    if origin is dict:
        _expect(isinstance(value, dict), "a mapping", value, where)
        return {k: parse(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        _expect(isinstance(value, list), "a list", value, where)
        return [parse(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        fits = isinstance(value, list | tuple) and len(value) == len(args)
        _expect(fits, f"{len(args)} values", value, where)
        return tuple(
            parse(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    return _parse_scalar(kind, value, where)


def _parse_record(kind: type, value: Any, where: str) -> Any:
    _expect(isinstance(value, dict), "a mapping", value, where)
    hints = _hints(kind)
    fields = dataclasses.fields(kind)
    names = [f.name for f in fields]
    # A field with a default was added later: a record written before it may lack it.
    missing = [f.name for f in fields if f.name not in value and f.default is dataclasses.MISSING]
    unknown = sorted(set(value) - set(names))
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise RecordError(f"{where}: {'; '.join(problems)}")
    return kind(**{n: parse(hints[n], value[n], f"{where}.{n}") for n in names if n in value})


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _parse_scalar(kind: type, value: Any, where: str) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float:  # an integral float may have been written as an int
        _expect(number, "a number", value, where)
        return float(value)
    if kind is int:
        _expect(isinstance(value, int) and not isinstance(value, bool), "an integer", value, where)
        return value
    _expect(isinstance(value, kind), f"a {kind.__name__}", value, where)
    return value


def _expect(ok: bool, what: str, value: Any, where: str) -> None:
    if not ok:
        shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:57]}..."
        raise RecordError(f"{where}: expected {what}, got {shown}")
