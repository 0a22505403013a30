"""What every results page shares: the current grid's results, the cells at the paper's
strength, provenance and verdict tables, display helpers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from paperlib.core.registry import ARCHITECTURES, PAPER_ARCHITECTURES, PAPER_PENALTY
from paperlib.core.settings import EligibilityConfig
from paperlib.report.verdicts import Verdict
from paperlib.run.profiles import load_grid
from paperlib.run.results import load_results

# A regularized model "keeps its accuracy" when its clean accuracy is at most this far
# below its base model's (mean over seeds; percentage points): the default of the
# profiles' ``testable.max_accuracy_drop``.
ACCURACY_KEPT = EligibilityConfig().max_accuracy_drop


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "claim": v.statement,
                "paper": v.where,
                "our evidence": v.evidence,
                "verdict": v.verdict,
            }
            for v in verdicts
        ]
    )


def verdicts_at_each_strength(
    judge: Callable[..., list[Verdict]], results: list[dict], rules: EligibilityConfig
) -> pd.DataFrame:
    """``verdict_table`` of ``judge``'s claims at every penalty strength in ``results``
    (the paper's c when none is there), strongest first, the paper's c marked: where
    the paper's strength left models that decide nothing, a weaker one still may."""
    tables = []
    for c in penalties_in(results) or [PAPER_PENALTY]:
        table = verdict_table(judge(results, rules, penalty=c))
        tables.append(table.assign(strength=strength_label(c)))
    return pd.concat(tables, ignore_index=True)


def strength_label(c: float) -> str:
    """How a table names penalty strength ``c``; the paper's is marked."""
    return f"c = {c:g}" + (" (the paper's)" if c == PAPER_PENALTY else "")


def run_table(results: list[dict]) -> pd.DataFrame:
    """Provenance of each cell: where, on what, from which data, and how long."""
    return pd.DataFrame(
        [
            {
                "cell": r["cell"],
                "wall time (s)": r["provenance"]["wall_seconds"],
                "device": r["provenance"]["device"],
                "commit": (r["provenance"]["commit"] or "-")[:10]
                + ("*" if r["provenance"]["dirty"] else ""),
                "data": r["provenance"]["data_source"],
            }
            for r in results
        ]
    )


def grid_results(profile: str, experiment: str) -> tuple[list[dict], list[str]]:
    """The results of the profile's current grid, in the grid's order (the density grid:
    by lambda, then seed), and the cells that have none.

    Result files of cells that are no longer in the grid (left by an older grid) are
    ignored, so they can never be mixed into a table.
    """
    expected = [cell.cell_id for cell in load_grid(experiment, profile)]
    by_cell = {r["cell"]: r for r in load_results(profile, experiment)}
    results = [by_cell[cell] for cell in expected if cell in by_cell]
    return results, [cell for cell in expected if cell not in by_cell]


def at_strength(results: list[dict], penalty: float = PAPER_PENALTY) -> list[dict]:
    """The base cells and every regularized cell at penalty strength ``penalty``: by
    default the paper's c, the cells its tables describe."""
    return [
        r
        for r in results
        if r["params"]["regularizer"] == "base" or r["params"]["penalty"] == penalty
    ]


def penalties_in(results: list[dict]) -> list[float]:
    """The penalty strengths of the regularized cells, strongest first."""
    found = {r["params"]["penalty"] for r in results if r["params"]["regularizer"] != "base"}
    return sorted(found, reverse=True)


def rounded(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Round a table's numbers for display, except the penalty c, which spans decades."""
    return table.round({c: digits for c in table.columns if c != "penalty"})


def architectures_in(results: list[dict]) -> list[str]:
    """The architectures that have results, in the usual order (the paper's if none do)."""
    present = {r["params"]["arch"] for r in results}
    return [a for a in ARCHITECTURES if a in present] or list(PAPER_ARCHITECTURES)
