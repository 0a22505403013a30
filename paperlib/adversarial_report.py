"""Tables and verdicts for experiment 2, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.config import ARCHITECTURES, ATTACK_NAMES, REGULARIZER_NAMES
from paperlib.paper import ATTACKS, CLAIMS, TABLE1
from paperlib.report import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Verdict
from paperlib.stats import bootstrap_ci, paired_difference_ci, unpack_bits


def _per_image(results: list[dict], arch: str, reg: str, *keys: str) -> np.ndarray | None:
    """Per-image correctness averaged over seeds (None when the cell is missing)."""
    runs = [r for r in results if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg]
    if not runs:
        return None
    bits = []
    for r in runs:
        node = r["correct"]
        for key in keys:
            node = node[key]
        bits.append(unpack_bits(node))
    return np.mean(bits, axis=0)


def table1(results: list[dict]) -> pd.DataFrame:
    """Accuracy under each attack after adversarial training, with 95% intervals and the
    paper's value, one row per architecture x regularizer x attack (percent)."""
    rows = []
    for arch in ARCHITECTURES:
        for reg in REGULARIZER_NAMES:
            for attack in ATTACK_NAMES:
                values = _per_image(results, arch, reg, "defended", attack)
                ours = (
                    (np.nan, np.nan, np.nan)
                    if values is None
                    else (100 * values.mean(), *(100 * v for v in bootstrap_ci(values)))
                )
                rows.append(
                    {
                        "arch": arch,
                        "regularizer": reg,
                        "attack": attack,
                        "ours": ours[0],
                        "low": ours[1],
                        "high": ours[2],
                        "paper": TABLE1[arch][reg][ATTACKS.index(attack)],
                        "seeds": sum(
                            r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
                            for r in results
                        ),
                    }
                )
    return pd.DataFrame(rows)


def table1_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as the paper lays it out, ours (with interval) beside the paper's."""

    def cell(row):
        if np.isnan(row.ours):
            return f"missing | {row.paper:.1f}"
        return f"{row.ours:.1f} [{row.low:.1f}, {row.high:.1f}] | {row.paper:.1f}"

    shown = table.assign(value=table.apply(cell, axis=1))
    wide = shown.pivot(index=["arch", "regularizer"], columns="attack", values="value")
    wide = wide.reindex(pd.MultiIndex.from_product([ARCHITECTURES, REGULARIZER_NAMES]))
    wide.columns = [f"{a} (ours [95% CI] | paper)" for a in wide.columns]
    return wide


def table1_beside(by_profile: dict[str, list[dict]]) -> pd.DataFrame:
    """Table 1 of several profiles side by side (percent, with 95% intervals), then the
    paper's column: one row per architecture x regularizer x attack."""
    keys = ["arch", "regularizer", "attack"]
    columns = {}
    for profile, results in by_profile.items():
        t = table1(results)
        columns[f"ours ({profile})"] = [
            "missing" if np.isnan(r.ours) else f"{r.ours:.1f} [{r.low:.1f}, {r.high:.1f}]"
            for r in t.itertuples()
        ]
    paper = table1([])  # the same rows, with the paper's values and no results of ours
    columns["paper (published)"] = [f"{v:.1f}" for v in paper["paper"]]
    return pd.DataFrame(columns, index=pd.MultiIndex.from_frame(paper[keys]))


def clean_and_undefended(results: list[dict]) -> pd.DataFrame:
    """What the paper omits: clean accuracy, weight sparsity, undefended robustness (%)."""
    rows = []
    for r in results:
        m = r["metrics"]
        row = {
            "arch": r["params"]["arch"],
            "regularizer": r["params"]["regularizer"],
            "seed": r["params"]["seed"],
            "clean": 100 * m["clean"]["accuracy"],
            "weight sparsity": 100 * m["clean"]["weight_sparsity"],
        }
        for attack in ATTACK_NAMES:
            row[f"{attack} (undefended)"] = 100 * m["undefended"][attack]["accuracy"]
        for attack in ("fgsm", "pgd"):
            row[f"{attack} @ 8/255"] = 100 * m["standard_eps"][attack]["accuracy"]
        row["DeepFool L2"] = m["undefended"]["deepfool"]["l2"]
        rows.append(row)
    return pd.DataFrame(rows).round(2)


def _comparisons(results: list[dict]) -> list[dict]:
    """Paired (same images) differences of each regularizer against base."""
    out = []
    for arch in ARCHITECTURES:
        for attack in ATTACK_NAMES:
            base = _per_image(results, arch, "base", "defended", attack)
            for reg in REGULARIZER_NAMES[1:]:
                other = _per_image(results, arch, reg, "defended", attack)
                if base is None or other is None:
                    continue
                low, high = paired_difference_ci(other, base)
                outcome = "win" if low > 0 else "loss" if high < 0 else "tie"
                out.append(
                    {
                        "arch": arch,
                        "attack": attack,
                        "regularizer": reg,
                        "diff": 100 * (other.mean() - base.mean()),
                        "low": 100 * low,
                        "high": 100 * high,
                        "outcome": outcome,
                    }
                )
    return out


def comparisons_table(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(_comparisons(results)).round(2)


def verdicts(results: list[dict]) -> list[Verdict]:
    comparisons = _comparisons(results)
    return [
        _helps(comparisons),
        _elastic_most_consistent(comparisons),
        _convergence(results),
        _overfitting(results),
    ]


def _helps(comparisons: list[dict]) -> Verdict:
    where, statement = CLAIMS["regularization-helps"]
    n = len(comparisons)
    wins = sum(c["outcome"] == "win" for c in comparisons)
    losses = sum(c["outcome"] == "loss" for c in comparisons)
    evidence = (
        f"of {n} paired comparisons with the base model (architecture x attack x "
        f"regularizer), {wins} are significant gains, {losses} significant losses, "
        f"{n - wins - losses} within noise"
    )
    if n == 0:
        verdict = INCONCLUSIVE
    elif wins >= 0.75 * n:
        verdict = REPRODUCED
    elif losses > 0 and losses >= wins:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Verdict("regularization-helps", where, statement, evidence, verdict)


def _elastic_most_consistent(comparisons: list[dict]) -> Verdict:
    where, statement = CLAIMS["elastic-most-consistent"]
    wins = {
        reg: sum(c["outcome"] == "win" and c["regularizer"] == reg for c in comparisons)
        for reg in REGULARIZER_NAMES[1:]
    }
    evidence = "significant gains over base: " + ", ".join(f"{k} {v}" for k, v in wins.items())
    others = max(v for k, v in wins.items() if k != "elastic")
    if not comparisons or wins["elastic"] == others:
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if wins["elastic"] > others else NOT_REPRODUCED
    return Verdict("elastic-most-consistent", where, statement, evidence, verdict)


def _vgg_histories(results: list[dict]) -> dict[str, list[list[dict]]]:
    return {
        reg: [
            r["history"]
            for r in results
            if r["params"]["arch"] == "vgg16" and r["params"]["regularizer"] == reg
        ]
        for reg in REGULARIZER_NAMES
    }


def epochs_to_converge(history: list[dict], fraction: float = 0.9) -> int:
    """First epoch whose train accuracy reaches ``fraction`` of the run's best."""
    best = max(h["train_acc"] for h in history)
    return next(h["epoch"] for h in history if h["train_acc"] >= fraction * best)


def val_loss_rise(history: list[dict]) -> float:
    """Final validation loss minus its minimum: how far it climbed back (overfitting)."""
    losses = [h["val_loss"] for h in history]
    return losses[-1] - min(losses)


def _convergence(results: list[dict]) -> Verdict:
    where, statement = CLAIMS["regularized-converge-slower"]
    histories = _vgg_histories(results)
    if any(not runs for runs in histories.values()):
        return Verdict(
            "regularized-converge-slower", where, statement, "VGG-16 cells missing", INCONCLUSIVE
        )
    epochs = {reg: [epochs_to_converge(h) for h in runs] for reg, runs in histories.items()}
    evidence = "epochs to reach 90% of the best train accuracy: " + ", ".join(
        f"{reg} {'/'.join(map(str, e))}" for reg, e in epochs.items()
    )
    slower = all(min(epochs[r]) > max(epochs["base"]) for r in REGULARIZER_NAMES[1:])
    faster = all(max(epochs[r]) < min(epochs["base"]) for r in REGULARIZER_NAMES[1:])
    verdict = REPRODUCED if slower else NOT_REPRODUCED if faster else INCONCLUSIVE
    return Verdict("regularized-converge-slower", where, statement, evidence, verdict)


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
    elif all(base_low > max(rise[r]) for r in REGULARIZER_NAMES[1:]):
        verdict = REPRODUCED
    elif all(max(rise["base"]) < min(rise[r]) for r in REGULARIZER_NAMES[1:]):
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Verdict("base-overfits", where, statement, evidence, verdict)
