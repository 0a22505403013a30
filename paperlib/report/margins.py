"""Each claim's margin, derived from the paper's own numbers where the analysis plan
names a rule: the smallest effect the paper's tables lead one to expect. The rules are
stated in ``params/analysis.yaml``; the numbers come from ``paperlib.report.paper``."""

from __future__ import annotations

import numpy as np

from paperlib.core.registry import ATTACKS, PAPER_COUNTERPART, REGULARIZERS
from paperlib.report.paper import TABLE1, TABLE2
from paperlib.run.analysis import ClaimPlan

RIVALS_OF_ELASTIC = ("l1", "l2")


def table1_gains(arch: str) -> list[float]:
    """The paper's Table 1 differences, regularized minus base (fractions), for ``arch``
    or the architecture it stands in for: 9 values."""
    row = TABLE1[PAPER_COUNTERPART[arch]]
    return [
        (row[reg][i] - row["base"][i]) / 100
        for reg in REGULARIZERS[1:]
        for i in range(len(ATTACKS))
    ]


def table1_elastic_advantages(arch: str) -> list[float]:
    """Table 1's elastic net minus L1 and minus L2 (fractions), per attack: 6 values."""
    row = TABLE1[PAPER_COUNTERPART[arch]]
    return [
        (row["elastic"][i] - row[rival][i]) / 100
        for rival in RIVALS_OF_ELASTIC
        for i in range(len(ATTACKS))
    ]


def table2_relative_gains(method: str) -> list[float]:
    """Table 2's reductions of the mean SSD, base minus regularized, relative to base."""
    row = TABLE2[method]
    base = row["base"][0]
    return [(base - row[reg][0]) / base for reg in REGULARIZERS[1:]]


def table2_relative_advantages(model: str, rivals: tuple[str, ...], method: str) -> list[float]:
    """Table 2's rival minus ``model`` mean SSD, relative to base's."""
    row = TABLE2[method]
    return [(row[rival][0] - row[model][0]) / row["base"][0] for rival in rivals]


def margin(plan: ClaimPlan, arch: str | None = None) -> float:
    """The claim's margin in its endpoint's unit (fractions for accuracy and for SSD,
    which is judged relative to the base model's mean SSD)."""
    if plan.margin is not None:
        return plan.margin
    if plan.margin_rule == "table1-median-gain":
        return float(np.median(table1_gains(arch)))
    if plan.margin_rule == "table1-median-elastic-advantage":
        return float(np.median(table1_elastic_advantages(arch)))
    if plan.margin_rule == "table1-deepfool-log-ratio":
        row = TABLE1[PAPER_COUNTERPART[arch]]
        i = ATTACKS.index("deepfool")
        return float(np.log(np.median([row[reg][i] / row["base"][i] for reg in REGULARIZERS[1:]])))
    if plan.margin_rule == "table2-half-median-gain":
        method = "occlusion" if "occlusion" in plan.name else "gradcam"
        return float(np.median(table2_relative_gains(method))) / 2
    if plan.margin_rule == "table2-half-median-advantage":
        if plan.name == "l1-stablest-occlusion":
            found = table2_relative_advantages("l1", ("base", "l2", "elastic"), "occlusion")
        else:
            found = [
                v
                for method in TABLE2
                for v in table2_relative_advantages("elastic", ("base", "l1", "l2"), method)
            ]
        return float(np.median(found)) / 2
    raise ValueError(f"claim {plan.name!r}: no margin and no rule to derive one")
