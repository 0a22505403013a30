"""What every results page shares: the current grid's results, the cells at the paper's
strength, provenance and verdict tables, display helpers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from paperlib.core.registry import ARCHITECTURES, PAPER_ARCHITECTURES, PAPER_PENALTY
from paperlib.core.settings import EligibilityConfig
from paperlib.report.judge import DISPLAY, Verdict
from paperlib.run.profiles import load_grid
from paperlib.run.results import Result, ResultError, load_results, unpaired_attributions

# A regularized model "keeps its accuracy" when its clean accuracy is at most this far
# below its base model's (mean over seeds; percentage points): the default of the
# profiles' ``testable.max_accuracy_drop``.
ACCURACY_KEPT = EligibilityConfig().max_accuracy_drop


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per verdict: the claim, its label and the numbers that earned it: the
    family's mean effect with its 95 % interval, the margin and the design's minimum
    detectable effect (in the endpoint's display unit), seeds and images; the evidence
    last."""
    return pd.DataFrame([verdict_row(v) for v in verdicts])


def verdict_row(v: Verdict) -> dict:
    scale, unit = DISPLAY[v.unit]

    def shown(x):
        return "–" if x is None else f"{scale * x:+.3g}"

    interval = "–" if v.low is None else f"[{shown(v.low)}, {shown(v.high)}]"
    return {
        "claim": v.statement,
        "paper": v.where,
        "endpoint": v.endpoint,
        "strength": v.strength,
        "role": v.role,
        "verdict": v.verdict,
        "effect": shown(v.effect),
        "95 % interval": interval,
        "margin": "–" if v.margin is None else f"{scale * v.margin:.3g}",
        "MDE": "–" if v.mde is None else f"{scale * v.mde:.3g}",
        "unit": unit,
        "seeds x images": f"{v.seeds} x {v.images}" if v.seeds else "–",
        "our evidence": v.evidence,
    }


def comparisons_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """The long table of comparisons behind ``verdicts``: one row per claim, endpoint,
    strength and comparison, with effect, interval, margin, seeds and images (in the
    endpoint's display unit), and the outcome of its two tests after Holm."""
    rows = []
    for v in verdicts:
        scale, unit = DISPLAY[v.unit]
        for c in v.comparisons:
            rows.append(
                {
                    "claim": v.claim,
                    "endpoint": v.endpoint,
                    "strength": v.strength,
                    "comparison": c["comparison"],
                    "unit": unit,
                    **{k: scale * c[k] for k in ("effect", "low", "high", "margin") if k in c},
                    "seeds": c.get("seeds"),
                    "images": c.get("images"),
                    "gain": c.get("gain"),
                    "short of margin": c.get("short of margin"),
                    "untestable": c["untestable"],
                }
            )
    columns = ["claim", "endpoint", "strength", "comparison", "unit", "effect", "low", "high"]
    columns += ["margin", "seeds", "images", "gain", "short of margin", "untestable"]
    return pd.DataFrame(rows, columns=columns).round(
        {"effect": 3, "low": 3, "high": 3, "margin": 3}
    )


def seed_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """The same comparisons seed by seed: one row per claim, endpoint, strength,
    comparison and seed, with that seed's effect (its paired differences averaged over
    images, in the endpoint's display unit). Seeds are the unit of the analysis; this is
    the table its intervals are drawn from."""
    rows = []
    for v in verdicts:
        scale, unit = DISPLAY[v.unit]
        for c in v.comparisons:
            for seed, effect in c.get("per seed", {}).items():
                rows.append(
                    {
                        "claim": v.claim,
                        "endpoint": v.endpoint,
                        "strength": v.strength,
                        "comparison": c["comparison"],
                        "seed": seed,
                        "effect": round(scale * effect, 3),
                        "unit": unit,
                    }
                )
    return pd.DataFrame(
        rows, columns=["claim", "endpoint", "strength", "comparison", "seed", "effect", "unit"]
    )


def verdicts_at_each_strength(
    judge: Callable[..., list[Verdict]], results: list[Result], rules: EligibilityConfig
) -> list[Verdict]:
    """``judge``'s verdicts at the primary strengths, then at every penalty strength in
    ``results`` (secondary, strongest first)."""
    found = list(judge(results, rules))
    for c in penalties_in(results):
        found += judge(results, rules, penalty=c)
    return found


def strength_label(c: float) -> str:
    """How a table names penalty strength ``c``; the paper's is marked."""
    return f"c = {c:g}" + (" (the paper's)" if c == PAPER_PENALTY else "")


def run_table(results: list[Result]) -> pd.DataFrame:
    """Provenance of each cell: where, on what, from which data, and how long."""
    return pd.DataFrame(
        [
            {
                "cell": r.cell,
                "wall time (s)": r.provenance.wall_seconds,
                "device": r.provenance.device,
                "commit": (r.provenance.commit or "-")[:10] + ("*" if r.provenance.dirty else ""),
                "data": r.provenance.data_source,
            }
            for r in results
        ],
        columns=["cell", "wall time (s)", "device", "commit", "data"],
    )


def grid_results(profile: str, experiment: str) -> tuple[list[Result], list[str]]:
    """The results of the profile's current grid, in the grid's order (the density grid:
    by lambda, then seed), and the cells that have none.

    Result files of cells that are no longer in the grid (left by an older grid) are
    ignored, so they can never be mixed into a table.
    """
    expected = [cell.cell_id for cell in load_grid(experiment, profile)]
    by_cell = {r.cell: r for r in load_results(profile, experiment)}
    results = [by_cell[cell] for cell in expected if cell in by_cell]
    return results, [cell for cell in expected if cell not in by_cell]


# What the attribution page says of cells whose model differs from experiment 2's.
UNPAIRED = (
    "These cells explain a model trained again from the same seed where experiment 2's "
    "checkpoint was missing, and it predicts otherwise than the model experiment 2 "
    "attacked (another machine's vector instructions can change the weights). They "
    "still measure the same recipe; the grid redoes them from experiment 2's checkpoint "
    "wherever that is present:"
)


def page_results(profile: str, experiment: str) -> list[Result]:
    """A results page's opening: the profile's results for ``experiment`` (``grid_results``),
    with their count printed and, shown as notes, the cells without results and what
    each data source says about itself (a synthetic stand-in, a subset). A profile
    without any result for ``experiment`` is refused here, by name, before a table
    deeper down fails on empty columns."""
    from IPython.display import Markdown, display  # here: only the pages display

    results, missing = grid_results(profile, experiment)
    if not results:
        raise ResultError(
            f"profile {profile!r} has no {experiment} results to show: run its grid first "
            f"(python -m paperlib grid --profile {profile} --experiment {experiment}, or "
            f"make book PROFILE={profile}), or open this page with a profile that has them"
        )
    print(f"profile {profile}: {len(results)} cells with results")
    if missing:
        display(Markdown(f"**Missing cells** (failed or not run): {', '.join(missing)}"))
    for note in sorted({r.provenance.data_note for r in results} - {""}):
        display(Markdown(f"**Data note.** {note}"))
    if experiment == "attribution":
        unpaired = unpaired_attributions(results, grid_results(profile, "adversarial")[0])
        if unpaired:
            display(Markdown(f"**Not the attacked model.** {UNPAIRED} {', '.join(unpaired)}"))
    return results


def at_strength(results: list[Result], penalty: float = PAPER_PENALTY) -> list[Result]:
    """The base cells and every regularized cell at penalty strength ``penalty``: by
    default the paper's c, the cells its tables describe."""
    return [r for r in results if r.params.regularizer == "base" or r.params.penalty == penalty]


def penalties_in(results: list[Result]) -> list[float]:
    """The penalty strengths of the regularized cells, strongest first."""
    found = {r.params.penalty for r in results if r.params.regularizer != "base"}
    return sorted(found, reverse=True)


def rounded(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Round a table's numbers for display, except the penalty c, which spans decades."""
    return table.round({c: digits for c in table.columns if c != "penalty"})


def architectures_in(results: list[Result]) -> list[str]:
    """The architectures that have results, in the usual order (the paper's if none do)."""
    present = {r.params.arch for r in results}
    return [a for a in ARCHITECTURES if a in present] or list(PAPER_ARCHITECTURES)
