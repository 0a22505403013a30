"""Experiment 1's claims judged by the one rule (``report.judge``): the activation
penalty lowers the average density, and the sparse models lose no accuracy."""

from __future__ import annotations

import numpy as np

from paperlib.core.eligibility import collapse_reason
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import unpack_bits
from paperlib.report.arms import paired_table
from paperlib.report.judge import Verdict, comparison, judge
from paperlib.report.paper import SPARSE_DENSITY
from paperlib.run.analysis import AnalysisPlan, load_analysis_plan
from paperlib.run.results import Result

DEFAULT_RULES = EligibilityConfig()


def _by_lambda(results: list[Result]) -> dict[float, dict[int, Result]]:
    out: dict[float, dict[int, Result]] = {}
    for r in results:
        out.setdefault(r.params.activity_l1, {})[r.params.seed] = r
    return dict(sorted(out.items()))


def _collapsed(cells: dict[int, Result], rules: EligibilityConfig) -> str:
    counts = np.sum([r.metrics.predicted_counts for r in cells.values()], axis=0)
    accuracy = float(np.mean([r.metrics.test_accuracy for r in cells.values()]))
    return collapse_reason(accuracy, counts, rules)


def density_claim_verdicts(
    results: list[Result],
    rules: EligibilityConfig = DEFAULT_RULES,
    plan: AnalysisPlan | None = None,
) -> list[Verdict]:
    """Each lambda > 0 against lambda = 0, seeds paired (the same seed: the same
    initialization and data order). A collapsed model decides nothing: its units can be
    silent because it stopped learning, not because its code became sparse."""
    plan = plan or load_analysis_plan()
    groups = _by_lambda(results)
    dense = groups.get(0.0, {})
    dense_lost = _collapsed(dense, rules) if dense else "lambda = 0 missing"
    falls, accurate = [], []
    for lam, cells in groups.items():
        if lam == 0:
            continue
        lost = dense_lost and f"lambda = 0: {dense_lost}" or _collapsed(cells, rules)
        label = f"lambda = {lam:g}"
        density = lambda r: [r.metrics.average_density]  # noqa: E731
        falls.append(
            comparison(
                label,
                "single_layer",
                None if lost else paired_table(dense, cells, density),
                plan.claims["density-falls"].margin,
                lost,
                plan.prior_seed_sd["density"],
            )
        )
        mean_density = np.mean([r.metrics.average_density for r in cells.values()])
        if mean_density <= SPARSE_DENSITY:
            hits = lambda r: unpack_bits(r.test_correct).astype(float)  # noqa: E731
            accurate.append(
                comparison(
                    f"{label} (density {mean_density:.3f})",
                    "single_layer",
                    None if lost else paired_table(cells, dense, hits),
                    plan.claims["sparse-as-accurate"].margin,
                    lost,
                    plan.prior_seed_sd["accuracy"],
                )
            )
    found = []
    for name, comparisons in (("density-falls", falls), ("sparse-as-accurate", accurate)):
        found.append(judge(plan, plan.claims[name], comparisons))
    return found
