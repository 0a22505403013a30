"""What a robustness researcher checks beyond the paper: each cell's gradient-masking
audit and its cross-attack matrix, as tables."""

from __future__ import annotations

import pandas as pd

from paperlib.core.audit import CHECKS
from paperlib.core.records import AuditCheck
from paperlib.core.registry import ATTACKS, REGULARIZERS
from paperlib.run.results import CrossAttack, Result

FLAG = "⚑"  # marks the numbers of a cell that failed the gradient-masking audit


def audit_failures(result: Result) -> list[str]:
    """The failed checks of a cell's gradient-masking audit ("model: check")."""
    return result.metrics.audit.failures


def _mark(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "–"}[passed]


def audit_frame(audit: dict[str, dict[str, AuditCheck]]) -> pd.DataFrame:
    """One cell's gradient-masking audit: a row per model, a column per check."""
    return pd.DataFrame(
        {
            model: {name: _mark(c.passed) for name, c in checks.items()}
            for model, checks in audit.items()
        }
    ).T


def cross_attack_frame(cross_attack: dict[str, dict[str, CrossAttack]]) -> pd.DataFrame:
    """One cell's cross-attack matrix: accuracy (%) of the model fine-tuned against each
    attack (rows) under every attack (columns), as "transfer / white-box"."""
    return pd.DataFrame(
        {
            f"fine-tuned against {trained}": {
                attack: f"{100 * v.transfer_accuracy:.1f} / {100 * v.accuracy:.1f}"
                for attack, v in row.items()
            }
            for trained, row in cross_attack.items()
        }
    ).T


def cross_attack_table(results: list[Result]) -> pd.DataFrame:
    """The cross-attack matrix of every cell, averaged over seeds: accuracy (%) of the
    model fine-tuned against each attack under every attack, "transfer / white-box"."""
    rows = []
    for r in results:
        p = r.params
        for trained, row in r.metrics.cross_attack.items():
            for attack, v in row.items():
                rows.append(
                    {
                        "arch": p.arch,
                        "regularizer": p.regularizer,
                        "penalty": p.penalty,
                        "fine-tuned against": trained,
                        "attack": attack,
                        "transfer": 100 * v.transfer_accuracy,
                        "white-box": 100 * v.accuracy,
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


def audit_table(results: list[Result]) -> pd.DataFrame:
    """Per cell, each check of the gradient-masking audit over the models it attacked:
    "pass", "FAIL" with the models that failed, or "–" where it applied to none."""
    rows = []
    for r in sorted(results, key=lambda r: r.cell):
        checks = r.metrics.audit.checks
        row = {"cell": r.cell}
        for name in CHECKS:
            outcomes = {model: c[name].passed for model, c in checks.items()}
            failed = [model for model, ok in outcomes.items() if ok is False]
            if failed:
                row[name] = "FAIL: " + ", ".join(failed)
            else:
                row[name] = "pass" if any(ok for ok in outcomes.values()) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def audit_details(results: list[Result]) -> pd.DataFrame:
    """What each failed check saw: one row per cell, model and failed check."""
    rows = [
        {"cell": r.cell, "model": model, "check": name, "detail": c.detail}
        for r in results
        for model, checks in r.metrics.audit.checks.items()
        for name, c in checks.items()
        if c.passed is False
    ]
    return pd.DataFrame(rows, columns=["cell", "model", "check", "detail"])
