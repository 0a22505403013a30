"""The one verdict rule: a claim's family of comparisons, each an effect with its interval
against the claim's margin, becomes one of five labels (``params/analysis.yaml`` states
the rule; this module applies it).

A comparison's effect is oriented so that a positive value supports the claim, and is
the block analysis of a seeds x images table of paired differences
(``core.stats.block_effect``). For a superiority claim each comparison gets two one-sided
tests: against "no gain" and against "a gain of at least the margin"; Holm's correction
runs over the family for each. For a non-inferiority claim the two tests are against
"worse by the margin or more" and "better than the margin below zero".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from paperlib.core.stats import (
    BlockEffect,
    block_effect,
    holm,
    minimum_detectable_effect,
    variance_components,
)
from paperlib.report.paper import CLAIMS
from paperlib.run.analysis import AnalysisPlan, ClaimPlan

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
HELPS_LESS = "helps, less than claimed"
UNDERPOWERED = "underpowered"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable"  # every comparison involves a model that decides nothing
LABELS = (REPRODUCED, NOT_REPRODUCED, HELPS_LESS, UNDERPOWERED, INCONCLUSIVE, NOT_TESTABLE)
PRIMARY, SECONDARY = "primary", "secondary"

# How each unit is shown: a multiplier and its name.
DISPLAY = {
    "accuracy": (100, "pt"),
    "ssd": (100, "% of base SSD"),
    "log_ratio": (100, "% (log rho)"),
    "density": (1, ""),
    "epochs": (1, "epochs"),
    "loss": (1, ""),
}


@dataclass(frozen=True)
class Comparison:
    """One comparison of a claim's family. ``diffs`` is the seeds x images table of paired
    differences it was computed from (None for the paper's published numbers);
    ``untestable`` says why it decides nothing ("" when it may)."""

    label: str  # e.g. "vgg16 fgsm l1"
    arch: str
    effect: BlockEffect | None
    margin: float
    untestable: str = ""
    diffs: np.ndarray | None = None
    seed_ids: tuple[int, ...] = ()  # the seeds that are the rows of ``diffs``
    prior_seed_variance: float | None = None  # stands in for the seed term with one seed


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict with the numbers behind it (in the endpoint's unit)."""

    claim: str
    where: str
    statement: str
    evidence: str
    verdict: str
    endpoint: str = ""
    role: str = PRIMARY  # or SECONDARY: another strength or endpoint, shown, never leading
    strength: str = ""  # "primary" strengths, or "c = 1e-4"
    unit: str = "accuracy"
    test: str = "superiority"  # or "non-inferiority": the margin then lies below zero
    margin: float | None = None
    effect: float | None = None
    low: float | None = None
    high: float | None = None
    seeds: int = 0
    images: int = 0
    mde: float | None = None
    comparisons: tuple[dict, ...] = field(default=())


def judge(
    plan: AnalysisPlan,
    claim: ClaimPlan,
    comparisons: list[Comparison],
    *,
    endpoint: str | None = None,
    role: str = PRIMARY,
    strength: str = "",
) -> Verdict:
    """The claim's verdict from its family of comparisons; where the paper makes the
    claim, and what it says, come from ``paper.CLAIMS``."""
    where, statement = CLAIMS[claim.name]
    testable = [c for c in comparisons if not c.untestable and c.effect is not None]
    rows = [_row(claim, c) for c in comparisons]
    base = dict(
        claim=claim.name,
        where=where,
        statement=statement,
        endpoint=endpoint or claim.endpoint,
        role=role,
        strength=strength,
        unit=claim.unit,
        test=claim.test,
    )
    if not testable:
        reasons = sorted({f"{c.label}: {c.untestable}" for c in comparisons if c.untestable})
        evidence = "; ".join(reasons) if reasons else "no results for this claim"
        label = NOT_TESTABLE if reasons else INCONCLUSIVE
        return Verdict(**base, evidence=evidence, verdict=label, comparisons=tuple(rows))
    n = len(testable)
    need = math.ceil(claim.share * n - 1e-9)
    sign = 1.0 if claim.test == "superiority" else -1.0
    # Superiority: reject "effect <= 0", and "effect >= margin". Non-inferiority: reject
    # "effect <= -margin", and "effect >= -margin".
    floor = [0.0 if sign > 0 else -c.margin for c in testable]
    ceiling = [c.margin if sign > 0 else -c.margin for c in testable]
    gains = holm([c.effect.p_above(f) for c, f in zip(testable, floor, strict=True)], plan.alpha)
    shorts = holm([c.effect.p_below(g) for c, g in zip(testable, ceiling, strict=True)], plan.alpha)
    won, fell_short = sum(gains), sum(shorts)
    mdes = [
        minimum_detectable_effect(c.effect.se, c.effect.df, plan.alpha / n, plan.power)
        for c in testable
    ]
    mde = float(np.median(mdes))
    margin = float(np.mean([c.margin for c in testable]))
    reproduced, refuted = won >= need, fell_short > n - need
    if reproduced and refuted:
        label = HELPS_LESS if claim.test == "superiority" else NOT_REPRODUCED
    elif reproduced:
        label = REPRODUCED
    elif refuted:
        label = NOT_REPRODUCED
    else:
        label = UNDERPOWERED if mde > margin else INCONCLUSIVE
    position = {id(c): i for i, c in enumerate(testable)}
    for row, c in zip(rows, comparisons, strict=True):
        if id(c) in position:
            i = position[id(c)]
            row |= {"gain": gains[i], "short of margin": shorts[i], "mde": mdes[i]}
    headline = _family_effect(testable)
    scale, name = DISPLAY[claim.unit]
    test = "no gain" if sign > 0 else f"a loss of {scale * margin:.3g} {name} or more"
    evidence = (
        f"{n} testable comparison(s), {need} needed: {won} reject {test}, {fell_short} reject "
        f"{'a gain of the margin' if sign > 0 else 'non-inferiority'} (Holm, one-sided, "
        f"family-wise {plan.alpha:g}); {len(comparisons) - n} not testable. "
        + "; ".join(_describe(claim, row) for row in rows)
    )
    low, high = headline.interval() if headline else (None, None)
    return Verdict(
        **base,
        evidence=evidence,
        verdict=label,
        margin=margin,
        effect=headline.effect if headline else float(np.mean([c.effect.effect for c in testable])),
        low=low,
        high=high,
        seeds=headline.seeds if headline else min(c.effect.seeds for c in testable),
        images=headline.images if headline else min(c.effect.images for c in testable),
        mde=mde,
        comparisons=tuple(rows),
    )


def _family_effect(comparisons: list[Comparison]) -> BlockEffect | None:
    """The family's average effect with its interval: the block analysis of the mean of
    the comparisons' tables over the seeds they all have (None where they share no seed
    or differ in images). With one shared seed, the comparisons' prior seed variance
    stands in for the seed term, as it does in each comparison."""
    with_tables = [c for c in comparisons if c.diffs is not None]
    if not with_tables:
        return None
    if all(c.seed_ids for c in with_tables):
        shared = sorted(set.intersection(*(set(c.seed_ids) for c in with_tables)))
        tables = [c.diffs[[c.seed_ids.index(s) for s in shared]] for c in with_tables]
    else:
        tables = [c.diffs for c in with_tables]
    if len({t.shape for t in tables}) != 1 or tables[0].size == 0:
        return None
    with warnings.catch_warnings():  # an image without a value anywhere: NaN, dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.stack(tables), axis=0)
    if np.isnan(mean).all(axis=0).all():
        return None
    return block_effect(mean, with_tables[0].prior_seed_variance)


def _row(claim: ClaimPlan, c: Comparison) -> dict:
    """A comparison as one row of the long table of comparisons."""
    row = {"comparison": c.label, "arch": c.arch, "margin": c.margin, "untestable": c.untestable}
    if c.effect is not None:
        low, high = c.effect.interval()
        row |= {
            "effect": c.effect.effect,
            "low": low,
            "high": high,
            "seeds": c.effect.seeds,
            "images": c.effect.images,
            "seed variance": c.effect.seed_variance,
        }
    if c.diffs is not None:
        row["seed var"], row["image var"] = variance_components(c.diffs)
    if c.diffs is not None and c.seed_ids:
        with warnings.catch_warnings():  # a seed without a value on any image: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(c.diffs, axis=1)
        row["per seed"] = dict(zip(c.seed_ids, means.tolist(), strict=True))
    return row


def _describe(claim: ClaimPlan, row: dict) -> str:
    scale, name = DISPLAY[claim.unit]
    if row["untestable"]:
        return f"{row['comparison']}: not testable ({row['untestable']})"
    if "effect" not in row:
        return f"{row['comparison']}: missing"
    alike = (
        ", every seed and image alike: the plan's prior seed variance"
        if row["seeds"] > 1 and row["seed variance"] == "prior"
        else ""
    )
    return (
        f"{row['comparison']}: {scale * row['effect']:+.3g} [{scale * row['low']:+.3g}, "
        f"{scale * row['high']:+.3g}] {name}, {row['seeds']} seed(s) x {row['images']} images"
        + alike
    )


def comparison(
    label: str,
    arch: str,
    diffs: pd.DataFrame | np.ndarray | None,
    margin: float,
    untestable: str = "",
    prior_seed_sd: float | None = None,
) -> Comparison:
    """A comparison from its seeds x images table (rows are seeds, paired across arms,
    indexed by seed where it is a frame); with one seed, ``prior_seed_sd`` stands in for
    the seed variance."""
    if diffs is None or untestable:
        return Comparison(label, arch, None, margin, untestable or "cells missing")
    seed_ids = tuple(int(s) for s in diffs.index) if isinstance(diffs, pd.DataFrame) else ()
    diffs = np.atleast_2d(np.asarray(diffs, dtype=float))
    if np.isnan(diffs).any(axis=0).all():
        return Comparison(label, arch, None, margin, "no image has a value in every seed")
    prior = None if prior_seed_sd is None else prior_seed_sd**2
    return Comparison(label, arch, block_effect(diffs, prior), margin, "", diffs, seed_ids, prior)
