"""Experiment 1's results page: density and accuracy per lambda, and its verdicts.

The verdict rule itself, and which models may decide a claim, live in
``paperlib.report.verdicts``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.eligibility import collapse_reason
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import bootstrap_ci, hierarchical_ci, unpack_bits
from paperlib.report.paper import CLAIMS, SPARSE_DENSITY
from paperlib.report.verdicts import (
    DEFAULT_RULES,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Verdict,
    compare,
    family_verdict,
    outcomes,
)

# "As accurate" is tested as non-inferiority: a sparse model may be at most this much
# less accurate (absolute, on [0, 1]) before we call it worse. Our assumption.
ACCURACY_MARGIN = 0.01


def density_table(results: list[dict]) -> pd.DataFrame:
    """One row per lambda: density and accuracies averaged over seeds, with the change in
    test accuracy against lambda = 0.

    Intervals resample seeds, then test images (``hierarchical_ci``): with several seeds,
    seed-to-seed variation is part of every interval.
    """
    by_lambda: dict[float, list[dict]] = {}
    for r in sorted(results, key=lambda r: (r["params"]["activity_l1"], r["params"]["seed"])):
        by_lambda.setdefault(r["params"]["activity_l1"], []).append(r)
    base = [_test_correct(r) for r in by_lambda.get(0.0, [])]
    rows = []
    for lam, runs in by_lambda.items():
        hits = [_test_correct(r) for r in runs]
        densities = [r["metrics"]["average_density"] for r in runs]
        density_ci = (
            bootstrap_ci(densities)
            if len(runs) > 1
            else tuple(runs[0]["metrics"]["average_density_ci"])
        )
        accuracy_ci = hierarchical_ci(hits)
        delta = (
            (np.mean(hits) - np.mean(base), *hierarchical_ci(hits, base))
            if base
            else (float("nan"),) * 3
        )
        rows.append(
            {
                "lambda": lam,
                "seeds": len(runs),
                "density": float(np.mean(densities)),
                "density_low": density_ci[0],
                "density_high": density_ci[1],
                "train_acc": float(np.mean([r["metrics"]["train_accuracy"] for r in runs])),
                "test_acc": float(np.mean(hits)),
                "test_acc_low": accuracy_ci[0],
                "test_acc_high": accuracy_ci[1],
                "delta_test_acc": float(delta[0]),
                "delta_low": delta[1],
                "delta_high": delta[2],
            }
        )
    return pd.DataFrame(rows)


def density_verdicts(
    results: list[dict], rules: EligibilityConfig = DEFAULT_RULES
) -> list[Verdict]:
    """Experiment 1's two claims. A model that collapsed (``rules``) may decide neither:
    its hidden units can be silent because it stopped learning, not because the code
    became sparse."""
    table = density_table(results)
    lost = _collapsed_lambdas(results, rules)
    return [_density_falls(table, lost), _sparse_as_accurate(results, table, lost)]


def _collapsed_lambdas(results: list[dict], rules: EligibilityConfig) -> dict[float, str]:
    """lambda -> why its models may not decide a claim (seeds pooled)."""
    by_lambda: dict[float, list[dict]] = {}
    for r in results:
        by_lambda.setdefault(r["params"]["activity_l1"], []).append(r["metrics"])
    lost = {}
    for lam, runs in by_lambda.items():
        counts = np.sum([m["predicted_counts"] for m in runs], axis=0)
        reason = collapse_reason(float(np.mean([m["test_accuracy"] for m in runs])), counts, rules)
        if reason:
            lost[lam] = reason
    return lost


def _density_falls(table: pd.DataFrame, lost: dict[float, str]) -> Verdict:
    where, statement = CLAIMS["density-falls"]
    usable = table[~table["lambda"].isin(list(lost))]
    if len(usable) < 2 or table["lambda"].iloc[0] != 0 or 0.0 in lost:
        why = "; ".join(f"lambda = {lam:g}: {reason}" for lam, reason in lost.items())
        verdict = NOT_TESTABLE if lost else INCONCLUSIVE
        evidence = f"not testable: {why}" if lost else "needs lambda = 0 and one lambda > 0"
        return Verdict("density-falls", where, statement, evidence, verdict)
    dense, sparsest = usable.iloc[0], usable.iloc[-1]
    evidence = (
        f"density {dense.density:.3f} [{dense.density_low:.3f}, {dense.density_high:.3f}]"
        f" at lambda = 0 vs {sparsest.density:.3f} [{sparsest.density_low:.3f}, "
        f"{sparsest.density_high:.3f}] at lambda = {sparsest['lambda']:g}"
    )
    if sparsest.density_high < dense.density_low:
        verdict = REPRODUCED
    elif sparsest.density_low > dense.density_high:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Verdict("density-falls", where, statement, evidence, verdict)


def _sparse_as_accurate(results: list[dict], table: pd.DataFrame, lost) -> Verdict:
    """Non-inferiority through the one verdict rule: each sparse model's accuracy plus
    the margin against the dense model's, seeds as units, Holm over the sparse models;
    a gain is a model significantly less than the margin worse."""
    where, statement = CLAIMS["sparse-as-accurate"]
    sparse = table[(table["lambda"] > 0) & (table["density"] <= SPARSE_DENSITY)]
    if sparse.empty or table["lambda"].iloc[0] != 0:
        return Verdict(
            "sparse-as-accurate",
            where,
            statement,
            f"no model with lambda > 0 reached a density <= {SPARSE_DENSITY}",
            INCONCLUSIVE,
        )
    hits = {}
    for r in results:
        hits.setdefault(r["params"]["activity_l1"], []).append(_test_correct(r))
    comparisons = [
        {"untestable": lost.get(lam) or f"lambda = 0: {lost[0.0]}"}
        if lam in lost or 0.0 in lost
        else compare([h + ACCURACY_MARGIN for h in hits[lam]], hits[0.0])
        for lam in sparse["lambda"]
    ]
    verdict, counts = family_verdict(outcomes(comparisons), share=1.0)
    evidence = "; ".join(
        f"lambda = {r['lambda']:g} (density {r.density:.3f}): "
        + (
            f"not testable: {c['untestable']}"
            if "untestable" in c
            else f"test accuracy change {100 * r.delta_test_acc:+.1f} pt "
            f"[{100 * r.delta_low:+.1f}, {100 * r.delta_high:+.1f}], "
            f"p = {c['p']:.3g} against a {100 * ACCURACY_MARGIN:g}-point loss"
        )
        for c, (_, r) in zip(comparisons, sparse.iterrows(), strict=True)
    )
    return Verdict("sparse-as-accurate", where, statement, f"{evidence}; {counts}", verdict)


def _test_correct(result: dict) -> np.ndarray:
    return unpack_bits(result["test_correct"]).astype(float)


def density_display(table: pd.DataFrame) -> pd.DataFrame:
    """``density_table`` as readable strings: percentages with their 95% intervals."""

    def pct(v, low, high):
        return f"{100 * v:.1f} [{100 * low:.1f}, {100 * high:.1f}]"

    return pd.DataFrame(
        {
            "λ": [f"{lam:g}" for lam in table["lambda"]],
            "seeds": table["seeds"],
            "average density": [
                f"{d:.3f} [{lo:.3f}, {hi:.3f}]"
                for d, lo, hi in zip(
                    table.density, table.density_low, table.density_high, strict=False
                )
            ],
            "train acc. (%)": [f"{100 * a:.1f}" for a in table.train_acc],
            "test acc. (%)": [
                pct(*v)
                for v in zip(table.test_acc, table.test_acc_low, table.test_acc_high, strict=False)
            ],
            "Δ test acc. vs λ=0 (pt)": [
                f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                for d, lo, hi in zip(
                    table.delta_test_acc, table.delta_low, table.delta_high, strict=False
                )
            ],
        }
    )


def density_beside(by_profile: dict[str, list[dict]]) -> pd.DataFrame:
    """Average density and test accuracy per λ for several profiles side by side. The
    paper gives Figure 1 only, no numbers, so there is no paper column."""
    columns = {}
    for profile, results in by_profile.items():
        shown = density_display(density_table(results)).set_index("λ")
        columns[f"density ({profile})"] = shown["average density"]
        columns[f"test acc. % ({profile})"] = shown["test acc. (%)"]
    return pd.DataFrame(columns).fillna("missing")
