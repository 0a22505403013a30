"""Experiment 1's results page: density and accuracy per lambda, and its verdicts.

The verdict rule itself, and which models may decide a claim, live in
``paperlib.report.verdicts``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import bootstrap_ci, hierarchical_ci, unpack_bits
from paperlib.report.claims_density import density_claim_verdicts
from paperlib.report.verdicts import (
    DEFAULT_RULES,
)
from paperlib.run.results import Result


def density_table(results: list[Result]) -> pd.DataFrame:
    """One row per lambda: density and accuracies averaged over seeds, with the change in
    test accuracy against lambda = 0.

    Intervals resample seeds, then test images (``hierarchical_ci``): with several seeds,
    seed-to-seed variation is part of every interval.
    """
    by_lambda: dict[float, list[Result]] = {}
    for r in sorted(results, key=lambda r: (r.params.activity_l1, r.params.seed)):
        by_lambda.setdefault(r.params.activity_l1, []).append(r)
    base = [_test_correct(r) for r in by_lambda.get(0.0, [])]
    rows = []
    for lam, runs in by_lambda.items():
        hits = [_test_correct(r) for r in runs]
        densities = [r.metrics.average_density for r in runs]
        density_ci = (
            bootstrap_ci(densities) if len(runs) > 1 else tuple(runs[0].metrics.average_density_ci)
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
                "train_acc": float(np.mean([r.metrics.train_accuracy for r in runs])),
                "test_acc": float(np.mean(hits)),
                "test_acc_low": accuracy_ci[0],
                "test_acc_high": accuracy_ci[1],
                "delta_test_acc": float(delta[0]),
                "delta_low": delta[1],
                "delta_high": delta[2],
            }
        )
    columns = ["lambda", "seeds", "density", "density_low", "density_high", "train_acc"]
    columns += ["test_acc", "test_acc_low", "test_acc_high", "delta_test_acc"]
    return pd.DataFrame(rows, columns=[*columns, "delta_low", "delta_high"])


def density_verdicts(results: list[Result], rules: EligibilityConfig = DEFAULT_RULES):
    """Experiment 1's claims (``claims_density.density_claim_verdicts``)."""
    return density_claim_verdicts(results, rules)


def _test_correct(result: Result) -> np.ndarray:
    return unpack_bits(result.test_correct).astype(float)


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


def density_beside(by_profile: dict[str, list[Result]]) -> pd.DataFrame:
    """Average density and test accuracy per λ for several profiles side by side. The
    paper gives Figure 1 only, no numbers, so there is no paper column."""
    columns = {}
    for profile, results in by_profile.items():
        shown = density_display(density_table(results)).set_index("λ")
        columns[f"density ({profile})"] = shown["average density"]
        columns[f"test acc. % ({profile})"] = shown["test acc. (%)"]
    return pd.DataFrame(columns).fillna("missing")
