"""Table 1 of experiment 2: accuracy under attack after adversarial training, with
intervals, beside the paper's values, and the paper's own entries that sit near chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.eligibility import collapse_reason, untestable_reason
from paperlib.core.registry import ATTACKS, PAPER_COUNTERPART, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import unpack_bits, wilson_interval
from paperlib.report.audit_tables import FLAG, audit_failures
from paperlib.report.common import architectures_in, at_strength
from paperlib.report.paper import TABLE1
from paperlib.report.verdicts import (
    DEFAULT_RULES,
    accuracy_interval,
)
from paperlib.run.profiles import load_grid
from paperlib.run.results import Result

# The two readings of the paper's protocol, and where each keeps its per-image outcomes:
# "transfer" scores the fine-tuned model on test images crafted against the original
# model (ART's adversarial-training example; the reading set beside Table 1),
# "white-box" attacks the fine-tuned model again.
READINGS = {"transfer": "transfer", "white-box": "defended"}
NEAR_CHANCE = "≈chance"  # a paper entry within noise of 10 % (``near_chance``)
CHANCE = 0.1  # CIFAR-10's ten classes
TABLE1_IMAGES = 500  # Table 1's values are multiples of 0.2 %
UNTESTABLE = "✗"  # marks a model that may not decide a claim (``verdicts.untestable_reason``)


def _per_seed(results: list[Result], arch: str, reg: str, *keys: str) -> list[np.ndarray] | None:
    """Per-image correctness, one array per seed (None when the cell is missing)."""
    runs = [r for r in results if r.params.arch == arch and r.params.regularizer == reg]
    if not runs:
        return None
    bits = []
    for r in runs:
        node = r.correct
        for key in keys:
            node = node[key]
        bits.append(unpack_bits(node).astype(float))
    return bits


def table1(
    results: list[Result], reading: str = "transfer", rules: EligibilityConfig = DEFAULT_RULES
) -> pd.DataFrame:
    """Accuracy under each attack after adversarial training, with 95% intervals and the
    paper's value, one row per architecture x regularizer x attack (percent), for the
    cells at the paper's penalty strength, in one of the ``READINGS``. ``untestable``
    says why a model may not decide a claim ("" when it may)."""
    results = at_strength(results)
    rows = []
    for arch in architectures_in(results):
        for reg in REGULARIZERS:
            state = model_state(results, arch, reg)
            if state is None:
                untestable = ""
            elif reg == "base":
                untestable = collapse_reason(*state, rules)
            else:
                untestable = why_untestable(results, arch, reg, rules)
            for attack in ATTACKS:
                seeds = _per_seed(results, arch, reg, READINGS[reading], attack)
                ours = (
                    (np.nan, np.nan, np.nan)
                    if seeds is None
                    else (100 * np.mean(seeds), *(100 * v for v in accuracy_interval(seeds)))
                )
                rows.append(
                    {
                        "arch": arch,
                        "regularizer": reg,
                        "attack": attack,
                        "ours": ours[0],
                        "low": ours[1],
                        "high": ours[2],
                        "paper": TABLE1[PAPER_COUNTERPART[arch]][reg][ATTACKS.index(attack)],
                        "seeds": sum(
                            r.params.arch == arch and r.params.regularizer == reg for r in results
                        ),
                        "untestable": untestable,
                        "flagged": any(
                            audit_failures(r)
                            for r in results
                            if r.params.arch == arch and r.params.regularizer == reg
                        ),
                    }
                )
    return pd.DataFrame(rows)


def table1_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as the paper lays it out, ours (with interval) beside the paper's; a
    model that failed the gradient-masking audit is marked with FLAG, one that may not
    decide a claim (collapsed, or too far below base) with UNTESTABLE."""

    def cell(row):
        if np.isnan(row.ours):
            return f"missing | {row.paper:.1f}"
        flag = f" {FLAG}" if row.flagged else ""
        flag += f" {UNTESTABLE}" if row.untestable else ""
        return f"{row.ours:.1f} [{row.low:.1f}, {row.high:.1f}]{flag} | {paper_entry(row.paper)}"

    shown = table.assign(value=table.apply(cell, axis=1))
    wide = shown.pivot(index=["arch", "regularizer"], columns="attack", values="value")
    archs = list(dict.fromkeys(table["arch"]))
    wide = wide.reindex(pd.MultiIndex.from_product([archs, REGULARIZERS]))
    wide.columns = [f"{a} (ours [95% CI] | paper)" for a in wide.columns]
    return wide


def table1_beside(by_profile: dict[str, list[dict]]) -> pd.DataFrame:
    """Table 1 of several profiles side by side (percent, with 95% intervals), then the
    paper's column: one row per architecture x regularizer x attack. An entry without
    a result reads "missing" when the profile's grid has that architecture, and "not
    in the grid" when it leaves it out (the cpu grid runs VGG-16 only)."""
    keys = ["arch", "regularizer", "attack"]
    paper = table1([])  # every row, with the paper's values and no results of ours
    index = pd.MultiIndex.from_frame(paper[keys])
    columns = {}
    for profile, results in by_profile.items():
        planned = {cell.arch for cell in load_grid("adversarial", profile)}
        t = table1(results).set_index(keys).reindex(index)
        columns[f"ours ({profile}, transfer)"] = [
            f"{r.ours:.1f} [{r.low:.1f}, {r.high:.1f}]"
            if not np.isnan(r.ours)
            else "missing"
            if r.Index[0] in planned
            else "not in the grid"
            for r in t.itertuples()
        ]
    columns["paper (published)"] = [paper_entry(v) for v in paper["paper"]]
    table = pd.DataFrame(columns, index=index)
    # Only the rows some profile ran; one line names the architectures none has.
    ran = [a for a in dict.fromkeys(index.get_level_values("arch")) if _ran(table, a, by_profile)]
    unrun = sorted(set(index.get_level_values("arch")) - set(ran))
    table = table[table.index.get_level_values("arch").isin(ran)] if ran else table
    table.attrs["not run by any profile"] = ", ".join(unrun)
    return table


def _ran(table: pd.DataFrame, arch: str, by_profile: dict) -> bool:
    ours = [c for c in table.columns if c.startswith("ours")]
    rows = table.xs(arch, level="arch")[ours]
    return bool((~rows.isin(["missing", "not in the grid"])).any().any())


def near_chance(percent: float, images: int = TABLE1_IMAGES) -> bool:
    """Whether a Table 1 entry is within noise of 10 %, what a model collapsed to one
    class scores under any attack: 10 % lies in the Wilson interval of its count."""
    low, high = wilson_interval(round(percent * images / 100), images)
    return low <= CHANCE <= high


def paper_near_chance() -> pd.DataFrame:
    """The paper's Table 1 entries within noise of chance, one row each."""
    rows = [
        {"arch": arch, "regularizer": reg, "attack": attack, "paper (%)": values[i]}
        for arch, by_reg in TABLE1.items()
        for reg, values in by_reg.items()
        for i, attack in enumerate(ATTACKS)
        if near_chance(values[i])
    ]
    return pd.DataFrame(rows)


def paper_entry(percent: float) -> str:
    """A paper's Table 1 entry as shown: marked when it is within noise of chance (the
    paper gives no clean accuracy that would rule collapse out)."""
    return f"{percent:.1f}" + (f" {NEAR_CHANCE}" if near_chance(percent) else "")


def model_state(results: list[Result], arch: str, reg: str) -> tuple[float, np.ndarray] | None:
    """Clean accuracy (mean over seeds, on [0, 1]) and predicted-class counts (summed
    over seeds) of the cells of ``arch`` x ``reg``; None when there are none."""
    runs = [
        r.metrics.clean for r in results if r.params.arch == arch and r.params.regularizer == reg
    ]
    if not runs:
        return None
    accuracy = float(np.mean([c.accuracy for c in runs]))
    return accuracy, np.sum([c.predicted_counts for c in runs], axis=0)


def why_untestable(results: list[Result], arch: str, reg: str, rules: EligibilityConfig) -> str:
    """Why ``reg`` on ``arch`` may not be compared with base ("" when it may): either
    model collapsed, or ``reg`` lost too much clean accuracy against base."""
    base, other = model_state(results, arch, "base"), model_state(results, arch, reg)
    reason = collapse_reason(*base, rules) if base else ""
    if reason:
        return "base " + reason
    return untestable_reason(*other, rules, base_accuracy=base[0] if base else None)
