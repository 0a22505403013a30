"""The analysis plan (``params/analysis.yaml``): how each claim is judged, read into
validated settings. The judging itself is ``paperlib.report.judge``'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from paperlib.core.settings import ConfigError, did_you_mean
from paperlib.run.profiles import PARAMS_DIR

TESTS = ("superiority", "non-inferiority")
UNITS = ("accuracy", "log_ratio", "ssd", "density", "epochs", "loss")
# Margins derived from the paper's tables at judging time (paperlib.report.margins).
MARGIN_RULES = (
    "table1-median-gain",
    "table1-median-elastic-advantage",
    "table2-half-median-gain",
    "table2-half-median-advantage",
    "table1-deepfool-log-ratio",  # DeepFool's log rho, a secondary endpoint
)


@dataclass(frozen=True)
class ClaimPlan:
    name: str
    test: str  # superiority or non-inferiority
    endpoint: str  # what is measured, in words
    unit: str  # the endpoint's unit (UNITS)
    family: str  # which comparisons the claim is made of, in words
    share: float  # of the testable comparisons that must agree
    margin: float | None  # in the endpoint's unit; None: ``margin_rule`` derives it
    margin_rule: str | None
    margin_derivation: str
    secondary_endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisPlan:
    alpha: float
    power: float
    max_val_drop: float  # points of validation accuracy: the primary-strength rule
    chosen: dict[str, dict[str, dict[str, float]]]  # profile -> arch -> regularizer -> c
    prior_seed_sd: dict[str, float]  # unit -> standard deviation of one seed's mean
    claims: dict[str, ClaimPlan] = field(default_factory=dict)


def load_analysis_plan(path=None) -> AnalysisPlan:
    """Read and check the plan; a wrong key or value names the file and the key."""
    path = path or PARAMS_DIR / "analysis.yaml"
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{where}: cannot read the analysis plan: {err}") from err
    _keys(raw, {"alpha", "power", "primary_strength", "prior_seed_sd", "claims"}, where, "")
    primary = raw["primary_strength"]
    _keys(primary, {"max_val_drop", "chosen"}, where, "primary_strength.")
    prior = {
        str(k): _number(v, where, f"prior_seed_sd.{k}") for k, v in raw["prior_seed_sd"].items()
    }
    missing = sorted(set(UNITS) - set(prior))
    if missing:
        raise ConfigError(f"{where}: prior_seed_sd: missing {', '.join(missing)}")
    return AnalysisPlan(
        alpha=_fraction(raw["alpha"], where, "alpha"),
        power=_fraction(raw["power"], where, "power"),
        max_val_drop=_number(primary["max_val_drop"], where, "primary_strength.max_val_drop"),
        chosen=_chosen(primary["chosen"] or {}, where),
        prior_seed_sd=prior,
        claims={name: _claim(name, spec, where) for name, spec in raw["claims"].items()},
    )


def _claim(name: str, spec: Any, where: str) -> ClaimPlan:
    prefix = f"claims.{name}."
    required = {"test", "endpoint", "unit", "family", "share", "margin", "margin_derivation"}
    _keys(spec, required | {"secondary_endpoints"}, where, prefix, required)
    for key, allowed in (("test", TESTS), ("unit", UNITS)):
        if spec[key] not in allowed:
            hint = did_you_mean(str(spec[key]), list(allowed))
            raise ConfigError(
                f"{where}: {prefix}{key}: unknown {spec[key]!r}{hint}; one of {allowed}"
            )
    margin = spec["margin"]
    rule = None
    if isinstance(margin, str):
        if margin not in MARGIN_RULES:
            hint = did_you_mean(margin, list(MARGIN_RULES))
            raise ConfigError(f"{where}: {prefix}margin: unknown rule {margin!r}{hint}")
        margin, rule = None, spec["margin"]
    else:
        margin = _number(margin, where, prefix + "margin")
        if margin <= 0:
            raise ConfigError(f"{where}: {prefix}margin must be > 0, got {margin!r}")
    return ClaimPlan(
        name=name,
        test=spec["test"],
        endpoint=" ".join(str(spec["endpoint"]).split()),
        unit=spec["unit"],
        family=spec["family"],
        share=_fraction(spec["share"], where, prefix + "share"),
        margin=margin,
        margin_rule=rule,
        margin_derivation=" ".join(str(spec["margin_derivation"]).split()),
        secondary_endpoints=tuple(spec.get("secondary_endpoints") or ()),
    )


def _chosen(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: primary_strength.chosen: expected a mapping of profiles")
    out = {}
    for profile, by_arch in raw.items():
        out[profile] = {
            arch: {
                reg: _number(c, where, f"primary_strength.chosen.{profile}.{arch}.{reg}")
                for reg, c in by_reg.items()
            }
            for arch, by_reg in by_arch.items()
        }
    return out


def _keys(raw: Any, allowed: set, where: str, prefix: str, required: set | None = None) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'}: expected a mapping")
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(str(key), sorted(allowed))
            raise ConfigError(f"{where}: unknown key {prefix + str(key)!r}{hint}")
    for key in sorted((allowed if required is None else required) - set(raw)):
        raise ConfigError(f"{where}: missing key {prefix + key!r}")


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
    return float(value)


def _fraction(value: Any, where: str, key: str) -> float:
    value = _number(value, where, key)
    if not 0 < value <= 1:
        raise ConfigError(f"{where}: {key} must be in (0, 1], got {value!r}")
    return value
