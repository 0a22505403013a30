"""Experiment 2's claims judged by the one rule (``report.judge``): regularization and
robustness (Table 1, Figure 2), elastic net's consistency, and the training curves of
Figure 3."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from paperlib.core.registry import ATTACKS, PAPER_COUNTERPART, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import BlockEffect, unpack_bits
from paperlib.report.arms import (
    arm,
    describe_strength,
    paired_table,
    primary_strengths,
    regularized_arms,
    strength_of,
    why_untestable,
)
from paperlib.report.judge import PRIMARY, SECONDARY, Verdict, comparison, judge
from paperlib.report.margins import margin
from paperlib.report.paper import TABLE1
from paperlib.run.analysis import AnalysisPlan, load_analysis_plan
from paperlib.run.results import Result

DEFAULT_RULES = EligibilityConfig()
TABLE1_IMAGES = 500  # Table 1's values are multiples of 0.2 %


def _bits(node) -> np.ndarray:
    return unpack_bits(node).astype(float)


def transfer_net(attack):
    def values(r):
        c = r.correct
        if "placebo" not in c:
            return None
        return _bits(c["transfer"][attack]) - _bits(c["placebo"][attack])

    return values


def _white_box(attack):
    return lambda r: _bits(r.correct["defended"][attack])


def _white_box_both_correct(attack):
    def values(r):
        c = r.correct
        if "defended_clean" not in c:
            return None
        hits = _bits(c["defended"][attack])
        return np.where(_bits(c["defended_clean"][attack]) == 1, hits, np.nan)

    return values


def _transfer(attack):
    return lambda r: _bits(r.correct["transfer"][attack])


def _at_radius(attack: str, eps: float):
    def values(r):
        found = r.metrics.endpoints
        i = int(np.argmin([abs(e - eps) for e in found.eps]))
        return (
            _bits(r.correct["endpoints"][attack][i])
            if math.isclose(found.eps[i], eps, rel_tol=1e-3)
            else None
        )

    return values


def _log_rho(r):
    rho = r.per_image.get("deepfool_rho", {}).get("undefended")
    if rho is None:
        return None
    return np.log(np.array([np.nan if v is None or v <= 0 else v for v in rho], dtype=float))


# endpoint -> (values per attack, or one function for the undefended model; its unit)
PRIMARY_ENDPOINT = "transfer minus placebo"
ENDPOINTS = {
    PRIMARY_ENDPOINT: (transfer_net, "accuracy"),
    "white-box": (_white_box, "accuracy"),
    "white-box, images both models classify correctly": (_white_box_both_correct, "accuracy"),
    "transfer without the placebo": (_transfer, "accuracy"),
    "AutoAttack at 2/255": (_at_radius("autoattack", 2 / 255), "accuracy"),
    "AutoAttack at 4/255": (_at_radius("autoattack", 4 / 255), "accuracy"),
    "PGD at 2/255": (_at_radius("pgd", 2 / 255), "accuracy"),
    "PGD at 4/255": (_at_radius("pgd", 4 / 255), "accuracy"),
    "DeepFool log rho": (_log_rho, "log_ratio"),
}
PER_ATTACK = {
    PRIMARY_ENDPOINT,
    "white-box",
    "white-box, images both models classify correctly",
    "transfer without the placebo",
}


def _clean_accuracy(r):
    return r.metrics.clean.accuracy


def _clean_counts(r):
    return r.metrics.clean.predicted_counts


def robustness_verdicts(
    results: list[Result],
    rules: EligibilityConfig = DEFAULT_RULES,
    penalty: float | None = None,
    plan: AnalysisPlan | None = None,
) -> list[Verdict]:
    """Experiment 2's claims at each regularizer's primary strength (``penalty`` None) or
    at strength ``penalty`` (secondary), then regularization-helps on its secondary
    endpoints."""
    plan = plan or load_analysis_plan()
    primary = primary_strengths(results, plan)
    role = PRIMARY if penalty is None else SECONDARY
    strength = describe_strength(penalty)
    found = [
        _helps(results, rules, plan, primary, penalty, PRIMARY_ENDPOINT, role, strength),
        _elastic_most_consistent(results, rules, plan, primary, penalty, role, strength),
        _same_accuracy(results, rules, plan, primary, penalty, role, strength),
        _per_seed_claim(
            results, rules, plan, primary, penalty, role, strength, "regularized-converge-slower"
        ),
        _per_seed_claim(results, rules, plan, primary, penalty, role, strength, "base-overfits"),
    ]
    for endpoint in ENDPOINTS:
        if endpoint != PRIMARY_ENDPOINT:
            found.append(
                _helps(results, rules, plan, primary, penalty, endpoint, SECONDARY, strength)
            )
    return found


def _accuracy_drop(claim_margin: float, unit: str, rules: EligibilityConfig) -> float:
    """The most clean accuracy a model may lose and still decide: the profile's limit, and
    for an accuracy claim no more than its margin."""
    return (
        min(rules.max_accuracy_drop, 100 * claim_margin)
        if unit == "accuracy"
        else rules.max_accuracy_drop
    )


def _helps(results, rules, plan, primary, penalty, endpoint, role, strength) -> Verdict:
    claim = plan.claims["regularization-helps"]
    values, unit = ENDPOINTS[endpoint]
    unit_claim = claim if unit == claim.unit else _with_unit(claim, unit)
    comparisons = []
    for arch, reg, c, model, base, untestable in regularized_arms(results, primary, penalty):
        delta = margin(unit_claim, arch)
        untestable = untestable or why_untestable(
            model,
            base,
            rules,
            _accuracy_drop(delta, unit, rules),
            _clean_accuracy,
            _clean_counts,
        )
        attacks = ATTACKS if endpoint in PER_ATTACK else (None,)
        for attack in attacks:
            fn = values(attack) if attack else values
            label = " ".join(x for x in (arch, attack, reg, f"c={c:g}" if c else "") if x)
            comparisons.append(
                comparison(
                    label,
                    arch,
                    None if untestable else paired_table(model, base, fn),
                    delta,
                    untestable,
                    plan.prior_seed_sd[unit],
                )
            )
    return judge(
        plan,
        unit_claim,
        comparisons,
        endpoint=endpoint,
        role=role,
        strength=strength,
    )


def _with_unit(claim, unit):
    """The claim judged on an endpoint in another unit: DeepFool's log rho, whose margin
    is the log of the paper's median ratio regularized / base in its DeepFool column."""
    return dataclasses.replace(
        claim, unit=unit, margin=None, margin_rule="table1-deepfool-log-ratio"
    )


def _elastic_most_consistent(results, rules, plan, primary, penalty, role, strength) -> Verdict:
    claim = plan.claims["elastic-most-consistent"]
    comparisons = []
    for arch in dict.fromkeys(r.params.arch for r in results):
        base = arm(results, arch, "base", None)
        c_elastic = strength_of(primary, arch, "elastic", penalty)
        elastic = arm(results, arch, "elastic", c_elastic) if c_elastic is not None else {}
        delta = margin(claim, arch)
        drop = _accuracy_drop(delta, claim.unit, rules)
        for rival_name in ("l1", "l2"):
            c_rival = strength_of(primary, arch, rival_name, penalty)
            rival = arm(results, arch, rival_name, c_rival) if c_rival is not None else {}
            untestable = why_untestable(
                elastic, base, rules, drop, _clean_accuracy, _clean_counts
            ) or why_untestable(rival, base, rules, drop, _clean_accuracy, _clean_counts)
            for attack in ATTACKS:
                fn = transfer_net(attack)
                comparisons.append(
                    comparison(
                        f"{arch} {attack} elastic - {rival_name}",
                        arch,
                        None if untestable else _net_contrast(elastic, rival, base, fn),
                        delta,
                        untestable,
                        plan.prior_seed_sd[claim.unit],
                    )
                )
    return judge(plan, claim, comparisons, role=role, strength=strength)


def _net_contrast(model, rival, base, values) -> np.ndarray | None:
    """(model - base) - (rival - base) on the seeds all three share: model - rival."""
    shared = set(model) & set(rival) & set(base)
    return paired_table({s: model[s] for s in shared}, {s: rival[s] for s in shared}, values)


def _same_accuracy(results, rules, plan, primary, penalty, role, strength) -> Verdict:
    claim = plan.claims["same-accuracy-slower"]
    comparisons = []
    for arch, reg, c, model, base, untestable in regularized_arms(results, primary, penalty):
        # Collapse alone bars a model here: losing accuracy is what this claim tests.
        untestable = untestable or why_untestable(
            model, base, rules, math.inf, _clean_accuracy, _clean_counts
        )
        comparisons.append(
            comparison(
                f"{arch} {reg}" + (f" c={c:g}" if c else ""),
                arch,
                None
                if untestable
                else paired_table(model, base, lambda r: _bits(r.correct["clean"])),
                claim.margin,
                untestable,
                plan.prior_seed_sd[claim.unit],
            )
        )
    return judge(plan, claim, comparisons, role=role, strength=strength)


def epochs_to_converge(history: list[dict], fraction: float = 0.9) -> int:
    """First epoch whose train accuracy reaches ``fraction`` of the run's best."""
    best = max(h["train_acc"] for h in history)
    return next(h["epoch"] for h in history if h["train_acc"] >= fraction * best)


def val_loss_rise(history: list[dict]) -> float:
    """Final validation loss minus its minimum: how far it climbed back (overfitting)."""
    losses = [h["val_loss"] for h in history]
    return losses[-1] - min(losses)


# claim -> (per-seed value of a cell, sign: +1 when the regularized value should be larger)
PER_SEED = {
    "regularized-converge-slower": (lambda r: epochs_to_converge(r.history), 1.0),
    "base-overfits": (lambda r: val_loss_rise(r.history), -1.0),
}


def _per_seed_claim(results, rules, plan, primary, penalty, role, strength, name) -> Verdict:
    """A claim about VGG-16's training curves (Figure 3), one value per seed."""
    claim = plan.claims[name]
    value, sign = PER_SEED[name]
    base = arm(results, "vgg16", "base", None)
    comparisons = []
    for reg in REGULARIZERS[1:]:
        c = strength_of(primary, "vgg16", reg, penalty)
        model = arm(results, "vgg16", reg, c) if c is not None else {}
        untestable = "" if c is not None else "no strength kept validation accuracy"
        untestable = untestable or why_untestable(
            model, base, rules, rules.max_accuracy_drop, _clean_accuracy, _clean_counts
        )
        table = None if untestable else paired_table(model, base, lambda r: np.array([value(r)]))
        comparisons.append(
            comparison(
                f"vgg16 {reg}" + (f" c={c:g}" if c else ""),
                "vgg16",
                None if table is None else sign * table,
                claim.margin,
                untestable,
                plan.prior_seed_sd[claim.unit],
            )
        )
    return judge(plan, claim, comparisons, role=role, strength=strength)


# --- the paper's own Table 1, judged by the same rule ----------------------------------


def _from_counts(model: float, rival: float, prior_sd: float) -> BlockEffect:
    """An effect from two of Table 1's accuracies (percent of 500 images, unpaired, one
    seed each): the binomial variance of both, plus the prior seed variance."""
    a, b = model / 100, rival / 100
    var = a * (1 - a) / TABLE1_IMAGES + b * (1 - b) / TABLE1_IMAGES + prior_sd**2
    return BlockEffect(a - b, float(np.sqrt(var)), 2 * TABLE1_IMAGES - 2, 1, TABLE1_IMAGES, "prior")


def paper_robustness_verdicts(archs: list[str], plan: AnalysisPlan | None = None) -> list[Verdict]:
    """Regularization-helps and elastic-most-consistent judged on the paper's Table 1, for
    the paper's rows of ``archs`` (each architecture's counterpart)."""
    from paperlib.report.judge import Comparison

    plan = plan or load_analysis_plan()
    prior = plan.prior_seed_sd["accuracy"]
    rows = list(dict.fromkeys(PAPER_COUNTERPART[a] for a in archs))
    helps, elastic = [], []
    for arch in rows:
        row = TABLE1[arch]
        for i, attack in enumerate(ATTACKS):
            for reg in REGULARIZERS[1:]:
                effect = _from_counts(row[reg][i], row["base"][i], prior)
                helps.append(
                    Comparison(
                        f"{arch} {attack} {reg}",
                        arch,
                        effect,
                        margin(plan.claims["regularization-helps"], arch),
                    )
                )
            for rival in ("l1", "l2"):
                effect = _from_counts(row["elastic"][i], row[rival][i], prior)
                elastic.append(
                    Comparison(
                        f"{arch} {attack} elastic - {rival}",
                        arch,
                        effect,
                        margin(plan.claims["elastic-most-consistent"], arch),
                    )
                )
    found = []
    for name, comparisons in (
        ("regularization-helps", helps),
        ("elastic-most-consistent", elastic),
    ):
        found.append(
            judge(
                plan,
                plan.claims[name],
                comparisons,
                endpoint="the paper's Table 1: counts of 500, unpaired, one seed "
                "(prior seed variance)",
            )
        )
    return found
