"""Experiment 2 per cell (clean accuracy, sparsity, undefended robustness, DeepFool's
rho) and its verdicts. Table 1 is ``report.table1``, the strength sweep
``report.strength_sweep``, the audit ``report.audit_tables``."""

from __future__ import annotations

import pandas as pd

from paperlib.core.records import AttackReport
from paperlib.core.registry import ATTACKS, RADIUS_ATTACKS
from paperlib.report.audit_tables import FLAG, audit_failures
from paperlib.report.claims_robustness import robustness_verdicts
from paperlib.report.common import rounded
from paperlib.report.verdicts import (
    DEFAULT_RULES,
)
from paperlib.run.results import Result


def clean_and_undefended(results: list[Result]) -> pd.DataFrame:
    """What the paper omits: clean accuracy, sparsity, undefended robustness (%)."""
    rows = []
    for r in results:
        m = r.metrics
        row = {
            "arch": r.params.arch,
            "regularizer": r.params.regularizer,
            "penalty": r.params.penalty,
            "seed": r.params.seed,
            "clean": 100 * m.clean.accuracy,
            "activation density": 100 * m.sparsity.activation_density,
            "Hoyer (weights)": m.sparsity.hoyer,
        }
        for attack in ATTACKS:
            row[f"{attack} (undefended)"] = 100 * m.undefended[attack].accuracy
        for attack in RADIUS_ATTACKS:
            row[f"{attack} @ 8/255"] = 100 * getattr(m.standard_eps, attack).accuracy
        row["AutoAttack @ 8/255"] = 100 * m.autoattack.accuracy
        row["DeepFool L2"] = m.undefended["deepfool"].l2
        row["audit"] = FLAG if audit_failures(r) else "pass"
        rows.append(row)
    return rounded(pd.DataFrame(rows), 2)


def deepfool_rho(results: list[Result]) -> pd.DataFrame:
    """DeepFool's robustness rho (median ||r|| / ||x|| over the images it fooled, with a
    95% interval) per cell: on the undefended model, and on the model fine-tuned against
    DeepFool and attacked again. Images DeepFool failed to fool are counted apart."""

    def shown(report: AttackReport) -> str:
        if report.rho is None:
            return "none fooled"
        low, high = report.rho_ci
        return f"{report.rho:.4f} [{low:.4f}, {high:.4f}]"

    rows = []
    for r in results:
        p, m = r.params, r.metrics
        before, after = m.undefended["deepfool"], m.defended["deepfool"]
        rows.append(
            {
                "arch": p.arch,
                "regularizer": p.regularizer,
                "penalty": p.penalty,
                "seed": p.seed,
                "rho, undefended": shown(before),
                "fooled / not": f"{before.fooled} / {before.not_fooled}",
                "rho, after DeepFool training": shown(after),
                "fooled / not, after": f"{after.fooled} / {after.not_fooled}",
            }
        )
    return pd.DataFrame(rows)


def adversarial_verdicts(results, rules=DEFAULT_RULES, penalty=None):
    """Experiment 2's claims (``claims_robustness.robustness_verdicts``): at each
    regularizer's primary strength, or at ``penalty`` as a secondary verdict."""
    return robustness_verdicts(results, rules, penalty)
