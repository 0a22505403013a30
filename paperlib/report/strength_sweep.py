"""The penalty's strength, the curve the paper does not have: each cell's clean accuracy,
robustness and sparsity against c, which strengths keep their accuracy, and how
sparsity and robustness correlate across models of comparable accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.eligibility import untestable_reason
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import spearman, spearman_ci
from paperlib.report.audit_tables import audit_failures
from paperlib.report.common import ACCURACY_KEPT
from paperlib.report.table1 import model_state
from paperlib.report.verdicts import (
    DEFAULT_RULES,
)
from paperlib.run.results import AdversarialMetrics, Result


def penalty_table(results: list[Result], rules: EligibilityConfig = DEFAULT_RULES) -> pd.DataFrame:
    """One row per cell: clean accuracy, robustness of the undefended model, sparsity.

    Robustness is accuracy under PGD at the standard 8/255 and DeepFool's robustness rho
    (NaN when it fooled nothing, as on a collapsed model), both on the undefended model:
    they need no adversarial training, so they show what the penalty alone did.
    Percentages except rho and Hoyer.
    """
    rows = []
    for r in results:
        m, p = r.metrics, r.params
        rows.append(
            {
                "arch": p.arch,
                "regularizer": p.regularizer,
                "penalty": p.penalty,
                "seed": p.seed,
                "clean": 100 * m.clean.accuracy,
                "pgd @ 8/255": 100 * m.standard_eps.pgd.accuracy,
                "autoattack @ 8/255": 100 * m.autoattack.accuracy,
                **_at_endpoints(m),
                "deepfool rho": _or_nan(m.undefended["deepfool"].rho),
                "activation density": 100 * m.sparsity.activation_density,
                "hoyer": m.sparsity.hoyer,
                "weights < 1e-3": 100 * m.sparsity.weight_sparsity["0.001"],
                "flagged": bool(audit_failures(r)),
                "untestable": _cell_untestable(results, r, rules),
            }
        )
    columns = ["arch", "regularizer", "penalty", "seed"]
    return (
        pd.DataFrame(rows).sort_values(columns).reset_index(drop=True) if rows else pd.DataFrame()
    )


def _at_endpoints(metrics: AdversarialMetrics) -> dict:
    """Accuracy (%) under AutoAttack and PGD at the endpoint radii (2/255, 4/255), where
    models are not all at 0 %; NaN where a profile did not measure that radius."""
    found = metrics.endpoints
    out = {}
    for eps, name in ((2 / 255, "2/255"), (4 / 255, "4/255")):
        at = [i for i, e in enumerate(found.eps) if abs(e - eps) < 1e-4]
        for attack in ("autoattack", "pgd"):
            out[f"{attack} @ {name}"] = 100 * getattr(found, attack)[at[0]] if at else np.nan
    return out


def _cell_untestable(results: list[Result], result: Result, rules: EligibilityConfig) -> str:
    """Why one cell's model may not decide a claim: collapsed, or (regularized) too far
    below the mean clean accuracy of its architecture's base seeds."""
    p, clean = result.params, result.metrics.clean
    base = model_state(results, p.arch, "base")
    against = None if p.regularizer == "base" or base is None else base[0]
    return untestable_reason(clean.accuracy, clean.predicted_counts, rules, against)


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
