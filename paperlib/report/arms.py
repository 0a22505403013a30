"""The arms of experiments 2 and 3 and their pairing: cells by architecture, regularizer
and strength, seeds matched across arms, the primary strength of each regularizer, and
which models may decide a claim."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from paperlib.core.eligibility import collapse_reason, untestable_reason
from paperlib.core.registry import REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.report.judge import PRIMARY
from paperlib.run.analysis import AnalysisPlan
from paperlib.run.results import Result

Cells = dict[int, dict]  # seed -> result


def arm(results: list[Result], arch: str, reg: str, penalty: float | None) -> Cells:
    """The cells of one arm by seed; base ignores ``penalty``."""
    return {
        r.params.seed: r
        for r in results
        if r.params.arch == arch
        and r.params.regularizer == reg
        and (reg == "base" or r.params.penalty == penalty)
    }


def paired_table(
    model: Cells, rival: Cells, values: Callable[[dict], np.ndarray | None]
) -> pd.DataFrame | None:
    """Seeds x images table of ``values(model cell) - values(rival cell)`` over the seeds
    both arms ran (the same seed: the same initialization, data order and crops), indexed
    by seed; None when they share no seed or a cell lacks the values."""
    seeds = sorted(set(model) & set(rival))
    rows = []
    for seed in seeds:
        a, b = values(model[seed]), values(rival[seed])
        if a is None or b is None:
            return None
        rows.append(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return pd.DataFrame(np.stack(rows), index=pd.Index(seeds, name="seed")) if rows else None


def validation_accuracy(result: Result) -> float:
    """A clean-trained model's validation accuracy (the last epoch's)."""
    return float(result.history[-1]["val_acc"])


def primary_strengths(
    results: list[Result], plan: AnalysisPlan
) -> dict[tuple[str, str], float | None]:
    """(arch, regularizer) -> its primary penalty strength: the plan's committed choice for
    the results' profile and architecture, else the rule applied to these results (the
    strongest c whose mean validation accuracy is within ``plan.max_val_drop`` points of
    base's); None where no strength qualifies or base is missing. An architecture the
    plan has not fixed yet (a new stage's pilot) gets the rule, as an unlisted profile
    does."""
    profile = results[0].profile if results else ""
    chosen = plan.chosen.get(profile)
    out = {}
    for arch in dict.fromkeys(r.params.arch for r in results):
        base = arm(results, arch, "base", None)
        for reg in REGULARIZERS[1:]:
            if chosen is not None and arch in chosen:
                out[arch, reg] = chosen[arch].get(reg)
                continue
            out[arch, reg] = None
            if not base:
                continue
            floor = (
                np.mean([validation_accuracy(r) for r in base.values()]) - plan.max_val_drop / 100
            )
            for c in strengths(results, arch, reg):
                kept = np.mean(
                    [validation_accuracy(r) for r in arm(results, arch, reg, c).values()]
                )
                if kept >= floor:
                    out[arch, reg] = c
                    break
    return out


def strengths(results: list[Result], arch: str, reg: str) -> list[float]:
    """The strengths ``reg`` ran on ``arch``, strongest first."""
    found = {
        r.params.penalty for r in results if r.params.arch == arch and r.params.regularizer == reg
    }
    return sorted(found, reverse=True)


NO_STRENGTH = "no strength kept validation accuracy"


def regularized_arms(results: list[Result], primary: dict, penalty: float | None):
    """For every architecture and regularizer: ``(arch, reg, c, its cells, the base
    cells, why it has none)``, at its primary strength (``penalty`` None) or ``penalty``."""
    for arch in dict.fromkeys(r.params.arch for r in results):
        base = arm(results, arch, "base", None)
        for reg in REGULARIZERS[1:]:
            c = strength_of(primary, arch, reg, penalty)
            model = arm(results, arch, reg, c) if c is not None else {}
            yield arch, reg, c, model, base, "" if c is not None else NO_STRENGTH


def strength_of(
    primary: dict[tuple[str, str], float | None], arch: str, reg: str, penalty: float | None
) -> float | None:
    """The strength judged: the primary one (``penalty`` None) or ``penalty``."""
    return primary.get((arch, reg)) if penalty is None else penalty


def describe_strength(penalty: float | None) -> str:
    return PRIMARY if penalty is None else f"c = {penalty:g}"


def model_state(cells: Cells, accuracy: Callable[[dict], float], counts: Callable[[dict], list]):
    """Mean clean accuracy and summed predicted-class counts of an arm's cells."""
    if not cells:
        return None
    return (
        float(np.mean([accuracy(r) for r in cells.values()])),
        np.sum([counts(r) for r in cells.values()], axis=0),
    )


def why_untestable(
    model_cells: Cells,
    rival_cells: Cells,
    rules: EligibilityConfig,
    max_drop: float,
    accuracy: Callable[[dict], float],
    counts: Callable[[dict], list],
    rival_is_base: bool = True,
) -> str:
    """Why a comparison decides nothing ("" when it may): either model collapsed, or the
    model lost more than ``max_drop`` points of clean accuracy against its base rival."""
    rules = dataclasses.replace(rules, max_accuracy_drop=max_drop)
    rival = model_state(rival_cells, accuracy, counts)
    model = model_state(model_cells, accuracy, counts)
    if rival is None or model is None:
        return "cells missing"
    reason = collapse_reason(*rival, rules)
    if reason:
        return ("base " if rival_is_base else "rival ") + reason
    return untestable_reason(*model, rules, base_accuracy=rival[0] if rival_is_base else None)
