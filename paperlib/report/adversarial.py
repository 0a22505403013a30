"""Tables and verdicts for experiment 2, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.audit import CHECKS
from paperlib.core.eligibility import collapse_reason, untestable_reason
from paperlib.core.registry import ATTACKS, PAPER_COUNTERPART, RADIUS_ATTACKS, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import spearman, spearman_ci, unpack_bits, wilson_interval
from paperlib.report.claims_robustness import robustness_verdicts
from paperlib.report.common import ACCURACY_KEPT, architectures_in, at_strength, rounded
from paperlib.report.paper import TABLE1
from paperlib.report.verdicts import (
    DEFAULT_RULES,
    accuracy_interval,
)
from paperlib.run.profiles import load_grid

# The two readings of the paper's protocol, and where each keeps its per-image outcomes:
# "transfer" scores the fine-tuned model on test images crafted against the original
# model (ART's adversarial-training example; the reading set beside Table 1),
# "white-box" attacks the fine-tuned model again.
READINGS = {"transfer": "transfer", "white-box": "defended"}
FLAG = "⚑"  # marks the numbers of a cell that failed the gradient-masking audit
NEAR_CHANCE = "≈chance"  # a paper entry within noise of 10 % (``near_chance``)
CHANCE = 0.1  # CIFAR-10's ten classes
TABLE1_IMAGES = 500  # Table 1's values are multiples of 0.2 %
UNTESTABLE = "✗"  # marks a model that may not decide a claim (``verdicts.untestable_reason``)


def audit_failures(result: dict) -> list[str]:
    """The failed checks of a cell's gradient-masking audit ("model: check")."""
    return result["metrics"]["audit"]["failures"]


def _per_seed(results: list[dict], arch: str, reg: str, *keys: str) -> list[np.ndarray] | None:
    """Per-image correctness, one array per seed (None when the cell is missing)."""
    runs = [r for r in results if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg]
    if not runs:
        return None
    bits = []
    for r in runs:
        node = r["correct"]
        for key in keys:
            node = node[key]
        bits.append(unpack_bits(node).astype(float))
    return bits


def table1(
    results: list[dict], reading: str = "transfer", rules: EligibilityConfig = DEFAULT_RULES
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
                            r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
                            for r in results
                        ),
                        "untestable": untestable,
                        "flagged": any(
                            audit_failures(r)
                            for r in results
                            if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
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


def clean_and_undefended(results: list[dict]) -> pd.DataFrame:
    """What the paper omits: clean accuracy, sparsity, undefended robustness (%)."""
    rows = []
    for r in results:
        m = r["metrics"]
        row = {
            "arch": r["params"]["arch"],
            "regularizer": r["params"]["regularizer"],
            "penalty": r["params"]["penalty"],
            "seed": r["params"]["seed"],
            "clean": 100 * m["clean"]["accuracy"],
            "activation density": 100 * m["sparsity"]["activation_density"],
            "Hoyer (weights)": m["sparsity"]["hoyer"],
        }
        for attack in ATTACKS:
            row[f"{attack} (undefended)"] = 100 * m["undefended"][attack]["accuracy"]
        for attack in RADIUS_ATTACKS:
            row[f"{attack} @ 8/255"] = 100 * m["standard_eps"][attack]["accuracy"]
        row["AutoAttack @ 8/255"] = 100 * m["autoattack"]["accuracy"]
        row["DeepFool L2"] = m["undefended"]["deepfool"]["l2"]
        row["audit"] = FLAG if audit_failures(r) else "pass"
        rows.append(row)
    return rounded(pd.DataFrame(rows), 2)


def deepfool_rho(results: list[dict]) -> pd.DataFrame:
    """DeepFool's robustness rho (median ||r|| / ||x|| over the images it fooled, with a
    95% interval) per cell: on the undefended model, and on the model fine-tuned against
    DeepFool and attacked again. Images DeepFool failed to fool are counted apart."""

    def shown(report: dict) -> str:
        if report.get("rho") is None:
            return "none fooled"
        low, high = report["rho_ci"]
        return f"{report['rho']:.4f} [{low:.4f}, {high:.4f}]"

    rows = []
    for r in results:
        p, m = r["params"], r["metrics"]
        before, after = m["undefended"]["deepfool"], m["defended"]["deepfool"]
        rows.append(
            {
                "arch": p["arch"],
                "regularizer": p["regularizer"],
                "penalty": p["penalty"],
                "seed": p["seed"],
                "rho, undefended": shown(before),
                "fooled / not": f"{before['fooled']} / {before['not_fooled']}",
                "rho, after DeepFool training": shown(after),
                "fooled / not, after": f"{after['fooled']} / {after['not_fooled']}",
            }
        )
    return pd.DataFrame(rows)


def model_state(results: list[dict], arch: str, reg: str) -> tuple[float, np.ndarray] | None:
    """Clean accuracy (mean over seeds, on [0, 1]) and predicted-class counts (summed
    over seeds) of the cells of ``arch`` x ``reg``; None when there are none."""
    runs = [
        r["metrics"]["clean"]
        for r in results
        if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
    ]
    if not runs:
        return None
    accuracy = float(np.mean([c["accuracy"] for c in runs]))
    return accuracy, np.sum([c["predicted_counts"] for c in runs], axis=0)


def why_untestable(results: list[dict], arch: str, reg: str, rules: EligibilityConfig) -> str:
    """Why ``reg`` on ``arch`` may not be compared with base ("" when it may): either
    model collapsed, or ``reg`` lost too much clean accuracy against base."""
    base, other = model_state(results, arch, "base"), model_state(results, arch, reg)
    reason = collapse_reason(*base, rules) if base else ""
    if reason:
        return "base " + reason
    return untestable_reason(*other, rules, base_accuracy=base[0] if base else None)


# --- the penalty's strength: the curve the paper does not have -----------------------


def penalty_table(results: list[dict], rules: EligibilityConfig = DEFAULT_RULES) -> pd.DataFrame:
    """One row per cell: clean accuracy, robustness of the undefended model, sparsity.

    Robustness is accuracy under PGD at the standard 8/255 and DeepFool's robustness rho
    (NaN when it fooled nothing, as on a collapsed model), both on the undefended model:
    they need no adversarial training, so they show what the penalty alone did.
    Percentages except rho and Hoyer.
    """
    rows = []
    for r in results:
        m, p = r["metrics"], r["params"]
        rows.append(
            {
                "arch": p["arch"],
                "regularizer": p["regularizer"],
                "penalty": p["penalty"],
                "seed": p["seed"],
                "clean": 100 * m["clean"]["accuracy"],
                "pgd @ 8/255": 100 * m["standard_eps"]["pgd"]["accuracy"],
                "autoattack @ 8/255": 100 * m["autoattack"]["accuracy"],
                **_at_endpoints(m),
                "deepfool rho": _or_nan(m["undefended"]["deepfool"]["rho"]),
                "activation density": 100 * m["sparsity"]["activation_density"],
                "hoyer": m["sparsity"]["hoyer"],
                "weights < 1e-3": 100 * m["sparsity"]["weight_sparsity"]["0.001"],
                "flagged": bool(audit_failures(r)),
                "untestable": _cell_untestable(results, r, rules),
            }
        )
    columns = ["arch", "regularizer", "penalty", "seed"]
    return (
        pd.DataFrame(rows).sort_values(columns).reset_index(drop=True) if rows else pd.DataFrame()
    )


def _at_endpoints(metrics: dict) -> dict:
    """Accuracy (%) under AutoAttack and PGD at the endpoint radii (2/255, 4/255), where
    models are not all at 0 %; NaN for results written before they were measured."""
    found = metrics.get("endpoints") or {"eps": []}
    out = {}
    for eps, name in ((2 / 255, "2/255"), (4 / 255, "4/255")):
        at = [i for i, e in enumerate(found["eps"]) if abs(e - eps) < 1e-4]
        for attack in ("autoattack", "pgd"):
            out[f"{attack} @ {name}"] = 100 * found[attack][at[0]] if at else np.nan
    return out


def _cell_untestable(results: list[dict], result: dict, rules: EligibilityConfig) -> str:
    """Why one cell's model may not decide a claim: collapsed, or (regularized) too far
    below the mean clean accuracy of its architecture's base seeds."""
    p, clean = result["params"], result["metrics"]["clean"]
    base = model_state(results, p["arch"], "base")
    against = None if p["regularizer"] == "base" or base is None else base[0]
    return untestable_reason(clean["accuracy"], clean["predicted_counts"], rules, against)


def accuracy_kept(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture x regularizer x strength: mean clean accuracy against base's, and
    whether it stays within ``ACCURACY_KEPT`` points of it."""
    base = table[table.regularizer == "base"].groupby("arch")["clean"].mean()
    penalized = table[table.regularizer != "base"]
    rows = []
    for (arch, reg, c), group in penalized.groupby(["arch", "regularizer", "penalty"]):
        if arch not in base:
            continue
        drop = base[arch] - group["clean"].mean()
        rows.append(
            {
                "arch": arch,
                "regularizer": reg,
                "penalty": c,
                "clean": group["clean"].mean(),
                "base clean": base[arch],
                "drop (pt)": drop,
                "kept": bool(drop <= ACCURACY_KEPT),
            }
        )
    return pd.DataFrame(rows).round({"clean": 2, "base clean": 2, "drop (pt)": 2})


def strongest_kept(table: pd.DataFrame) -> pd.DataFrame:
    """For each architecture and regularizer, the strongest penalty that keeps clean
    accuracy within ``ACCURACY_KEPT`` points of base (none: no strength does)."""
    kept = accuracy_kept(table)
    rows = []
    for (arch, reg), group in kept.groupby(["arch", "regularizer"]):
        ok = group[group.kept]
        rows.append(
            {
                "arch": arch,
                "regularizer": reg,
                "strongest c within the margin": ok.penalty.max() if len(ok) else "none",
                "its drop (pt)": ok.sort_values("penalty")["drop (pt)"].iloc[-1]
                if len(ok)
                else group["drop (pt)"].min(),
                "strengths tried": ", ".join(f"{c:g}" for c in sorted(group.penalty)),
            }
        )
    return pd.DataFrame(rows)


SPARSITY_MEASURES = ("activation density", "hoyer", "weights < 1e-3")
# Endpoints that vary between models: at 8/255 every cpu model is at 0 % under PGD.
ROBUSTNESS_MEASURES = ("autoattack @ 2/255", "pgd @ 2/255", "deepfool rho")


def sparsity_robustness(table: pd.DataFrame, *, resamples: int = 2000) -> pd.DataFrame:
    """Spearman correlation between each sparsity and each robustness measure across
    the cells that kept their clean accuracy (within ``ACCURACY_KEPT`` points of their
    architecture's base), with a 95% bootstrap interval over cells.

    Comparing only models of comparable accuracy keeps a collapsed model, which is
    both "sparse" and trivially unattackable, from making the correlation.
    """
    base = table[table.regularizer == "base"].groupby("arch")["clean"].mean()
    comparable = table[
        table.apply(lambda r: base.get(r.arch, -1e9) - r.clean, axis=1).le(ACCURACY_KEPT)
    ]
    rows = []
    for sparse in SPARSITY_MEASURES:
        for robust in ROBUSTNESS_MEASURES:
            pairs = comparable[[sparse, robust]].dropna()
            x, y = pairs[sparse].to_numpy(), pairs[robust].to_numpy()
            row = {"sparsity": sparse, "robustness": robust, "cells": len(x)}
            point = spearman(x, y) if len(x) >= 4 else np.nan
            row |= {"spearman": point, "low": np.nan, "high": np.nan, "why none": ""}
            if len(x) < 4:
                row["why none"] = "fewer than 4 cells of comparable accuracy"
            elif np.isnan(point):
                name, values = (robust, y) if np.ptp(y) == 0 else (sparse, x)
                row["why none"] = f"{name} is the same in every cell ({values[0]:g})"
            if not np.isnan(point):  # a constant measure has no correlation to bound
                row["low"], row["high"] = spearman_ci(x, y, resamples=resamples)
            rows.append(row)
    return pd.DataFrame(rows).round(3)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


# --- what a robustness researcher checks beyond the paper ----------------------------


def _mark(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "–"}[passed]


def audit_frame(audit: dict) -> pd.DataFrame:
    """One cell's gradient-masking audit: a row per model, a column per check."""
    return pd.DataFrame(
        {
            model: {name: _mark(c["passed"]) for name, c in checks.items()}
            for model, checks in audit.items()
        }
    ).T


def cross_attack_frame(cross_attack: dict) -> pd.DataFrame:
    """One cell's cross-attack matrix: accuracy (%) of the model fine-tuned against each
    attack (rows) under every attack (columns), as "transfer / white-box"."""
    return pd.DataFrame(
        {
            f"fine-tuned against {trained}": {
                attack: f"{100 * v['transfer_accuracy']:.1f} / {100 * v['accuracy']:.1f}"
                for attack, v in row.items()
            }
            for trained, row in cross_attack.items()
        }
    ).T


def cross_attack_table(results: list[dict]) -> pd.DataFrame:
    """The cross-attack matrix of every cell, averaged over seeds: accuracy (%) of the
    model fine-tuned against each attack under every attack, "transfer / white-box"."""
    rows = []
    for r in results:
        p = r["params"]
        for trained, row in r["metrics"]["cross_attack"].items():
            for attack, v in row.items():
                rows.append(
                    {
                        "arch": p["arch"],
                        "regularizer": p["regularizer"],
                        "penalty": p["penalty"],
                        "fine-tuned against": trained,
                        "attack": attack,
                        "transfer": 100 * v["transfer_accuracy"],
                        "white-box": 100 * v["accuracy"],
                    }
                )
    if not rows:
        return pd.DataFrame()
    keys = ["arch", "regularizer", "penalty", "fine-tuned against"]
    means = pd.DataFrame(rows).groupby([*keys, "attack"])[["transfer", "white-box"]].mean()
    # Regularizers and attacks in the paper's table order, not alphabetical.
    order = {name: i for i, name in enumerate(REGULARIZERS + ATTACKS)}
    means = means.sort_index(key=lambda level: level.map(lambda v: order.get(v, v)))
    shown = means.apply(lambda v: f"{v['transfer']:.1f} / {v['white-box']:.1f}", axis=1)
    return shown.unstack("attack", sort=False)


def audit_table(results: list[dict]) -> pd.DataFrame:
    """Per cell, each check of the gradient-masking audit over the models it attacked:
    "pass", "FAIL" with the models that failed, or "–" where it applied to none."""
    rows = []
    for r in sorted(results, key=lambda r: r["cell"]):
        checks = r["metrics"]["audit"]["checks"]
        row = {"cell": r["cell"]}
        for name in CHECKS:
            outcomes = {model: c[name]["passed"] for model, c in checks.items()}
            failed = [model for model, ok in outcomes.items() if ok is False]
            if failed:
                row[name] = "FAIL: " + ", ".join(failed)
            else:
                row[name] = "pass" if any(ok for ok in outcomes.values()) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def audit_details(results: list[dict]) -> pd.DataFrame:
    """What each failed check saw: one row per cell, model and failed check."""
    rows = [
        {"cell": r["cell"], "model": model, "check": name, "detail": c["detail"]}
        for r in results
        for model, checks in r["metrics"]["audit"]["checks"].items()
        for name, c in checks.items()
        if c["passed"] is False
    ]
    return pd.DataFrame(rows, columns=["cell", "model", "check", "detail"])


def adversarial_verdicts(results, rules=DEFAULT_RULES, penalty=None):
    """Experiment 2's claims (``claims_robustness.robustness_verdicts``): at each
    regularizer's primary strength, or at ``penalty`` as a secondary verdict."""
    return robustness_verdicts(results, rules, penalty)
