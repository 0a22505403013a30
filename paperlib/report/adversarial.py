"""Tables and verdicts for experiment 2, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.audit import CHECKS
from paperlib.core.eligibility import collapse_reason, untestable_reason
from paperlib.core.registry import ATTACKS, PAPER_COUNTERPART, PAPER_PENALTY, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import unpack_bits
from paperlib.report.common import ACCURACY_KEPT, architectures_in, at_strength, rounded
from paperlib.report.paper import CLAIMS, TABLE1
from paperlib.report.verdicts import (
    DEFAULT_RULES,
    GAIN,
    INCONCLUSIVE,
    LOSS,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    TIE,
    Verdict,
    accuracy_interval,
    compare,
    compare_counts,
    family_verdict,
    outcomes,
)
from paperlib.run.profiles import load_grid

# The two readings of the paper's protocol, and where each keeps its per-image outcomes:
# "transfer" scores the fine-tuned model on test images crafted against the original
# model (ART's adversarial-training example; the reading set beside Table 1),
# "white-box" attacks the fine-tuned model again.
READINGS = {"transfer": "transfer", "white-box": "defended"}
FLAG = "⚑"  # marks the numbers of a cell that failed the gradient-masking audit
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
        return f"{row.ours:.1f} [{row.low:.1f}, {row.high:.1f}]{flag} | {row.paper:.1f}"

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
    columns["paper (published)"] = [f"{v:.1f}" for v in paper["paper"]]
    return pd.DataFrame(columns, index=index)


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
        for attack in ("fgsm", "pgd"):
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


def _comparisons(
    results: list[dict],
    reading: str = "transfer",
    rules: EligibilityConfig = DEFAULT_RULES,
    penalty: float = PAPER_PENALTY,
) -> list[dict]:
    """Paired (same images) differences of each regularizer against base, at penalty
    strength ``penalty`` (the paper's by default), in one of the ``READINGS``; the family
    of the claim that regularization helps, judged by ``verdicts.outcomes`` (Holm over
    the family).

    A comparison with a model that is not testable (``why_untestable``) is "not
    testable", whatever its interval: a model that learned little keeps a chance-level
    share of images under any attack, which says nothing about robustness.
    """
    results = at_strength(results, penalty)
    out = []
    for arch in architectures_in(results):
        for attack in ATTACKS:
            base = _per_seed(results, arch, "base", READINGS[reading], attack)
            for reg in REGULARIZERS[1:]:
                other = _per_seed(results, arch, reg, READINGS[reading], attack)
                if base is None or other is None:
                    continue
                c = compare(other, base)
                out.append(
                    {
                        "arch": arch,
                        "attack": attack,
                        "regularizer": reg,
                        "diff": 100 * c["diff"],
                        "low": 100 * c["low"],
                        "high": 100 * c["high"],
                        "p": c["p"],
                        "untestable": why_untestable(results, arch, reg, rules),
                        "audit": FLAG
                        if any(
                            audit_failures(r)
                            for r in results
                            if r["params"]["arch"] == arch
                            and r["params"]["regularizer"] in ("base", reg)
                        )
                        else "pass",
                    }
                )
    for c, outcome in zip(out, outcomes(out), strict=True):
        c["outcome"] = outcome
    return out


def comparisons_table(
    results: list[dict], reading: str = "transfer", rules: EligibilityConfig = DEFAULT_RULES
) -> pd.DataFrame:
    return pd.DataFrame(_comparisons(results, reading, rules)).round(
        {"diff": 2, "low": 2, "high": 2, "p": 4}
    )


def adversarial_verdicts(
    results: list[dict], rules: EligibilityConfig = DEFAULT_RULES, penalty: float = PAPER_PENALTY
) -> list[Verdict]:
    """The claims of experiment 2, judged on the base models and the regularized ones at
    penalty strength ``penalty`` (the paper's by default)."""
    results = at_strength(results, penalty)
    comparisons = _comparisons(results, rules=rules, penalty=penalty)
    return [
        _helps(comparisons),
        _elastic_most_consistent(comparisons),
        _same_accuracy_slower(convergence_table(results, rules)),
        _convergence(results, rules),
        _overfitting(results),
    ]


def paper_comparisons() -> list[dict]:
    """The family of ``_comparisons`` built from the paper's own Table 1: each entry an
    accuracy out of 500 attacked images, per-image outcomes unpublished, so regularizer
    and base are compared as two counts (Fisher's exact test)."""
    n = 500
    out = []
    for arch, rows in TABLE1.items():
        for i, attack in enumerate(ATTACKS):
            base = round(rows["base"][i] * n / 100)
            for reg in REGULARIZERS[1:]:
                c = compare_counts(round(rows[reg][i] * n / 100), base, n)
                out.append(
                    {"arch": arch, "attack": attack, "regularizer": reg, "untestable": ""}
                    | {"diff": 100 * c["diff"], "p": c["p"]}
                )
    for c, outcome in zip(out, outcomes(out), strict=True):
        c["outcome"] = outcome
    return out


def paper_verdicts() -> list[Verdict]:
    """What the verdict rule concludes from the paper's own Table 1."""
    comparisons = paper_comparisons()
    how = "the paper's counts of 500, unpaired, Fisher's exact test"
    return [_helps(comparisons, how), _elastic_most_consistent(comparisons)]


def _helps(comparisons: list[dict], how: str = "ours paired by image, transfer reading") -> Verdict:
    where, statement = CLAIMS["regularization-helps"]
    verdict, counts = family_verdict([c["outcome"] for c in comparisons], share=0.75)
    reasons = sorted(
        {
            f"{c['arch']} {c['regularizer']}: {c['untestable']}"
            for c in comparisons
            if c["untestable"]
        }
    )
    evidence = f"comparisons with the base model (architecture x attack x regularizer; {how}): "
    evidence += counts + (f" ({'; '.join(reasons)})" if reasons else "")
    if not comparisons:
        verdict = INCONCLUSIVE
    return Verdict("regularization-helps", where, statement, evidence, verdict)


def _elastic_most_consistent(comparisons: list[dict]) -> Verdict:
    where, statement = CLAIMS["elastic-most-consistent"]
    wins = {
        reg: sum(c["outcome"] == GAIN and c["regularizer"] == reg for c in comparisons)
        for reg in REGULARIZERS[1:]
    }
    evidence = "significant gains over base (Holm): " + ", ".join(
        f"{k} {v}" for k, v in wins.items()
    )
    untestable = sorted({c["regularizer"] for c in comparisons if c["outcome"] == NOT_TESTABLE})
    if untestable:
        evidence += f"; not testable: {', '.join(untestable)}"
    others = max(v for k, v in wins.items() if k != "elastic")
    if "elastic" in untestable or (untestable and wins["elastic"] <= others):
        # Elastic net cannot be judged, or could only "win" against untestable rivals.
        verdict = NOT_TESTABLE
    elif not comparisons or wins["elastic"] == others:
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if wins["elastic"] > others else NOT_REPRODUCED
    return Verdict("elastic-most-consistent", where, statement, evidence, verdict)


def _vgg_histories(results: list[dict]) -> dict[str, list[list[dict]]]:
    """VGG-16's clean training curves per regularizer (``results`` at one strength)."""
    vgg = [r for r in results if r["params"]["arch"] == "vgg16"]
    return {
        reg: [r["history"] for r in vgg if r["params"]["regularizer"] == reg]
        for reg in REGULARIZERS
    }


def epochs_to_converge(history: list[dict], fraction: float = 0.9) -> int:
    """First epoch whose train accuracy reaches ``fraction`` of the run's best."""
    best = max(h["train_acc"] for h in history)
    return next(h["epoch"] for h in history if h["train_acc"] >= fraction * best)


def val_loss_rise(history: list[dict]) -> float:
    """Final validation loss minus its minimum: how far it climbed back (overfitting)."""
    losses = [h["val_loss"] for h in history]
    return losses[-1] - min(losses)


def _convergence(results: list[dict], rules: EligibilityConfig = DEFAULT_RULES) -> Verdict:
    where, statement = CLAIMS["regularized-converge-slower"]
    histories = _vgg_histories(results)
    if any(not runs for runs in histories.values()):
        return Verdict(
            "regularized-converge-slower", where, statement, "VGG-16 cells missing", INCONCLUSIVE
        )
    lost = {r: why_untestable(results, "vgg16", r, rules) for r in REGULARIZERS[1:]}
    lost = {r: why for r, why in lost.items() if why}
    if lost:
        # The claim says all models reach the same accuracy, only later: these did not.
        evidence = "; ".join(f"{r}: {why}" for r, why in lost.items()) + (
            ": they did not converge to the same accuracy at all"
        )
        return Verdict("regularized-converge-slower", where, statement, evidence, NOT_TESTABLE)
    epochs = {reg: [epochs_to_converge(h) for h in runs] for reg, runs in histories.items()}
    evidence = "epochs to reach 90% of the best train accuracy: " + ", ".join(
        f"{reg} {'/'.join(map(str, e))}" for reg, e in epochs.items()
    )
    slower = all(min(epochs[r]) > max(epochs["base"]) for r in REGULARIZERS[1:])
    faster = all(max(epochs[r]) < min(epochs["base"]) for r in REGULARIZERS[1:])
    verdict = REPRODUCED if slower else NOT_REPRODUCED if faster else INCONCLUSIVE
    return Verdict("regularized-converge-slower", where, statement, evidence, verdict)


def convergence_table(
    results: list[dict], rules: EligibilityConfig = DEFAULT_RULES
) -> pd.DataFrame:
    """Section 4.2's claim, per architecture, regularizer and penalty strength: did the
    model reach its base model's clean accuracy (within ``rules.max_accuracy_drop``
    points, and not collapsed), and did it take more epochs to get there (train
    accuracy at 90% of its best, every seed later than every base seed)?"""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        p = r["params"]
        groups.setdefault((p["arch"], p["regularizer"], p["penalty"]), []).append(r)
    base = {arch: runs for (arch, reg, _), runs in groups.items() if reg == "base"}
    rows = []
    for (arch, reg, c), runs in sorted(groups.items()):
        if reg == "base" or arch not in base:
            continue
        base_accuracy = float(np.mean([r["metrics"]["clean"]["accuracy"] for r in base[arch]]))
        base_epochs = [epochs_to_converge(r["history"]) for r in base[arch]]
        accuracy = float(np.mean([r["metrics"]["clean"]["accuracy"] for r in runs]))
        counts = np.sum([r["metrics"]["clean"]["predicted_counts"] for r in runs], axis=0)
        epochs = [epochs_to_converge(r["history"]) for r in runs]
        missed = untestable_reason(accuracy, counts, rules, base_accuracy=base_accuracy)
        if missed:
            verdict, why = NOT_REPRODUCED, f"did not reach base's accuracy ({missed})"
        elif min(epochs) > max(base_epochs):
            verdict, why = REPRODUCED, "same accuracy, later"
        elif max(epochs) < min(base_epochs):
            verdict, why = NOT_REPRODUCED, "same accuracy, sooner"
        else:
            verdict, why = INCONCLUSIVE, "same accuracy, as soon (seeds overlap)"
        rows.append(
            {
                "arch": arch,
                "regularizer": reg,
                "penalty": c,
                "clean": 100 * accuracy,
                "base clean": 100 * base_accuracy,
                "epochs to 90%": "/".join(map(str, epochs)),
                "base epochs": "/".join(map(str, base_epochs)),
                "verdict": verdict,
                "why": why,
            }
        )
    return rounded(pd.DataFrame(rows), 2)


def _same_accuracy_slower(table: pd.DataFrame) -> Verdict:
    """The claim holds only if it holds for every architecture and strength."""
    where, statement = CLAIMS["same-accuracy-slower"]
    if table.empty:
        return Verdict(
            "same-accuracy-slower", where, statement, "no regularized cells", INCONCLUSIVE
        )
    marks = table.verdict.map({REPRODUCED: GAIN, NOT_REPRODUCED: LOSS}).fillna(TIE).tolist()
    verdict, _ = family_verdict(marks, share=1.0)
    evidence = "; ".join(
        f"{r.arch} {r.regularizer} c={r.penalty:g}: {r.why}" for r in table.itertuples()
    )
    return Verdict("same-accuracy-slower", where, statement, evidence, verdict)


def _overfitting(results: list[dict]) -> Verdict:
    where, statement = CLAIMS["base-overfits"]
    histories = _vgg_histories(results)
    if any(not runs for runs in histories.values()):
        return Verdict("base-overfits", where, statement, "VGG-16 cells missing", INCONCLUSIVE)
    rise = {reg: [val_loss_rise(h) for h in runs] for reg, runs in histories.items()}
    evidence = "validation-loss rise from its minimum to the last epoch: " + ", ".join(
        f"{reg} {'/'.join(f'{v:.3f}' for v in r)}" for reg, r in rise.items()
    )
    base_low = min(rise["base"])
    if len(rise["base"]) < 2:
        evidence += " (one seed: no interval, so no verdict either way)"
        verdict = INCONCLUSIVE
    elif all(base_low > max(rise[r]) for r in REGULARIZERS[1:]):
        verdict = REPRODUCED
    elif all(max(rise["base"]) < min(rise[r]) for r in REGULARIZERS[1:]):
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Verdict("base-overfits", where, statement, evidence, verdict)


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
ROBUSTNESS_MEASURES = ("pgd @ 8/255", "deepfool rho")


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
    rng = np.random.default_rng(0)
    rows = []
    for sparse in SPARSITY_MEASURES:
        for robust in ROBUSTNESS_MEASURES:
            pairs = comparable[[sparse, robust]].dropna()
            x, y = pairs[sparse].to_numpy(), pairs[robust].to_numpy()
            row = {"sparsity": sparse, "robustness": robust, "cells": len(x)}
            point = _spearman(x, y) if len(x) >= 4 else np.nan
            row |= {"spearman": point, "low": np.nan, "high": np.nan, "why none": ""}
            if len(x) < 4:
                row["why none"] = "fewer than 4 cells of comparable accuracy"
            elif np.isnan(point):
                name, values = (robust, y) if np.ptp(y) == 0 else (sparse, x)
                row["why none"] = f"{name} is the same in every cell ({values[0]:g})"
            if not np.isnan(point):  # a constant measure has no correlation to bound
                picks = rng.integers(0, len(x), size=(resamples, len(x)))
                draws = np.array([_spearman(x[i], y[i]) for i in picks])
                # Resamples that drew one value over and over have no correlation.
                row["low"], row["high"] = np.percentile(draws[~np.isnan(draws)], [2.5, 97.5])
            rows.append(row)
    return pd.DataFrame(rows).round(3)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN if either is constant."""
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


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
