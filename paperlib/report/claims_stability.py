"""Experiment 3's claims judged by the one rule (``report.judge``): attribution maps of
regularized models move less (Table 2), L1 is the stablest for sliding patches, and
elastic net the stablest across methods.

The SSD's scale depends on how maps are drawn and normalized, so effects are relative:
differences of per-image SSDs divided by the base model's mean SSD on the same images.
"""

from __future__ import annotations

import numpy as np

from paperlib.core.registry import REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import BlockEffect
from paperlib.report.arms import (
    arm,
    describe_strength,
    paired_table,
    primary_strengths,
    strength_of,
    why_untestable,
)
from paperlib.report.common import grid_results
from paperlib.report.judge import PRIMARY, SECONDARY, Comparison, Verdict, comparison, judge
from paperlib.report.margins import margin
from paperlib.report.paper import TABLE2
from paperlib.run.analysis import AnalysisPlan, load_analysis_plan
from paperlib.run.results import Result

DEFAULT_RULES = EligibilityConfig()
METHODS = {"occlusion": "occlusion_ssd", "gradcam": "gradcam_ssd"}
TABLE2_IMAGES = 1000
# claim -> (model, rivals, methods); None as model: each regularizer against base.
STABILITY_CLAIMS = {
    "regularized-stabler-occlusion": (None, ("base",), ("occlusion",)),
    "regularized-stabler-gradcam": (None, ("base",), ("gradcam",)),
    "l1-stablest-occlusion": ("l1", ("base", "l2", "elastic"), ("occlusion",)),
    "elastic-most-stable": ("elastic", ("base", "l1", "l2"), ("occlusion", "gradcam")),
}


def _ssd(method: str):
    def values(r):
        found = r.per_image.get(METHODS[method])
        if found is None:
            return None
        return np.array([np.nan if v is None else v for v in found], dtype=float)

    return values


def _accuracy(r):
    return r.metrics.clean_accuracy


def _counts(r):
    return r.metrics.predicted_counts


def stability_verdicts(
    results: list[Result],
    rules: EligibilityConfig = DEFAULT_RULES,
    penalty: float | None = None,
    plan: AnalysisPlan | None = None,
    primary: dict[tuple[str, str], float | None] | None = None,
) -> list[Verdict]:
    """Experiment 3's claims at the primary strengths (``penalty`` None) or at ``penalty``.

    The primary strengths are experiment 2's (``primary``, else chosen from the same
    profile's experiment-2 results): experiment 3 explains the same models."""
    plan = plan or load_analysis_plan()
    if primary is None and results:
        adversarial = grid_results(results[0].profile, "adversarial")[0]
        primary = primary_strengths(adversarial, plan)
    role = PRIMARY if penalty is None else SECONDARY
    found = []
    for name, (model_reg, rivals, methods) in STABILITY_CLAIMS.items():
        claim = plan.claims[name]
        comparisons = []
        for arch in dict.fromkeys(r.params.arch for r in results):
            base = arm(results, arch, "base", None)
            models = REGULARIZERS[1:] if model_reg is None else (model_reg,)
            for method in methods:
                for reg in models:
                    for rival_reg in rivals:
                        if rival_reg == reg:
                            continue
                        comparisons.append(
                            _compare(
                                results,
                                rules,
                                plan,
                                primary,
                                penalty,
                                claim,
                                arch,
                                base,
                                method,
                                reg,
                                rival_reg,
                            )
                        )
        found.append(
            judge(
                plan,
                claim,
                comparisons,
                role=role,
                strength=describe_strength(penalty),
            )
        )
    return found


def _cells(results, primary, penalty, arch, reg):
    if reg == "base":
        return arm(results, arch, "base", None), None
    c = strength_of(primary, arch, reg, penalty)
    return (arm(results, arch, reg, c) if c is not None else {}), c


def _compare(
    results, rules, plan, primary, penalty, claim, arch, base, method, reg, rival_reg
) -> Comparison:
    model, c = _cells(results, primary, penalty, arch, reg)
    rival, c_rival = _cells(results, primary, penalty, arch, rival_reg)
    label = f"{arch} {method} {rival_reg} - {reg}" + (f" c={c:g}" if c else "")
    drop = rules.max_accuracy_drop
    untestable = why_untestable(model, base, rules, drop, _accuracy, _counts)
    if rival_reg != "base":
        untestable = untestable or why_untestable(rival, base, rules, drop, _accuracy, _counts)
    if not untestable and (
        (reg != "base" and c is None) or (rival_reg != "base" and c_rival is None)
    ):
        untestable = "no strength kept validation accuracy"
    table = None
    if not untestable:
        shared = set(model) & set(rival) & set(base)
        pick = lambda cells: {s: cells[s] for s in shared}  # noqa: E731
        table = paired_table(pick(rival), pick(model), _ssd(method))
        scale = _base_mean(pick(base), method)
        table = None if table is None or not scale else table / scale
    return comparison(
        label, arch, table, margin(claim, arch), untestable, plan.prior_seed_sd["ssd"]
    )


def _base_mean(base, method) -> float | None:
    values = [_ssd(method)(r) for r in base.values()]
    if not values or any(v is None for v in values):
        return None
    mean = float(np.nanmean(np.stack(values)))
    return mean if np.isfinite(mean) and mean > 0 else None


def paper_stability_verdicts(plan: AnalysisPlan | None = None) -> list[Verdict]:
    """The same claims on the paper's Table 2 (mean and standard deviation of 1,000 images
    per regularizer, unpaired, one seed): Welch's standard error plus the prior seed
    variance, relative to base's mean SSD. The paper pools (or does not name) the
    architecture, so the family has one row."""
    plan = plan or load_analysis_plan()
    prior = plan.prior_seed_sd["ssd"]
    found = []
    for name, (model_reg, rivals, methods) in STABILITY_CLAIMS.items():
        claim = plan.claims[name]
        comparisons = []
        for method in methods:
            row = TABLE2[method]
            base_mean = row["base"][0]
            for reg in REGULARIZERS[1:] if model_reg is None else (model_reg,):
                for rival in rivals:
                    if rival == reg:
                        continue
                    (mm, sm), (mr, sr) = row[reg], row[rival]
                    se = np.sqrt((sm**2 + sr**2) / TABLE2_IMAGES) / base_mean
                    effect = BlockEffect(
                        (mr - mm) / base_mean,
                        float(np.sqrt(se**2 + prior**2)),
                        2 * TABLE2_IMAGES - 2,
                        1,
                        TABLE2_IMAGES,
                        "prior",
                    )
                    comparisons.append(
                        Comparison(f"{method} {rival} - {reg}", "paper", effect, margin(claim))
                    )
        found.append(
            judge(
                plan,
                claim,
                comparisons,
                endpoint="the paper's Table 2: mean and std of 1,000 images, unpaired, "
                "one seed (prior seed variance)",
            )
        )
    return found
