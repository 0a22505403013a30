"""The analysis plan as the methods page prints it: one row per claim, with the margins
the plan's rules derive from the paper's tables (``report.margins``)."""

from __future__ import annotations

from paperlib.report.judge import DISPLAY
from paperlib.report.margins import margin
from paperlib.report.paper import CLAIMS
from paperlib.run.analysis import AnalysisPlan, ClaimPlan, load_analysis_plan

STUDY_ARCHS = ("vgg16", "resnet26")


def analysis_plan_markdown(plan: AnalysisPlan | None = None) -> str:
    """Markdown for the methods page: the rule's settings, then a table of the claims."""
    plan = plan or load_analysis_plan()
    lines = [
        f"Family-wise error {plan.alpha:g} per claim (one-sided tests, Holm); minimum "
        f"detectable effects at power {plan.power:g}. Primary strength: the strongest c "
        f"whose validation accuracy (mean over seeds) is within {plan.max_val_drop:g} "
        "points of base's.",
        "",
    ]
    for profile, by_arch in plan.chosen.items():
        chosen = "; ".join(
            f"{arch}: " + ", ".join(f"{reg} {c:g}" for reg, c in regs.items())
            for arch, regs in by_arch.items()
        )
        lines += [f"Primary strengths fixed for `{profile}`: {chosen}.", ""]
    priors = ", ".join(f"{unit} {sd:g}" for unit, sd in plan.prior_seed_sd.items())
    lines += [
        f"Prior standard deviation of one seed's mean difference, used only where one seed "
        f"per arm cannot estimate it: {priors}.",
        "",
        "| claim | test | endpoint | family | share | margin | where the margin comes from |",
        "|---|---|---|---|---|---|---|",
    ]
    for claim in plan.claims.values():
        lines.append(
            f"| {CLAIMS[claim.name][1]} | {claim.test} | {claim.endpoint} | {claim.family} "
            f"| {claim.share:g} | {_margins(claim)} | {claim.margin_derivation} |"
        )
    return "\n".join(lines) + "\n"


def _margins(claim: ClaimPlan) -> str:
    scale, unit = DISPLAY[claim.unit]
    if claim.margin is not None or claim.margin_rule.startswith("table2"):
        return f"{scale * margin(claim, STUDY_ARCHS[0]):.3g} {unit}".strip()
    return "; ".join(f"{arch} {scale * margin(claim, arch):.3g} {unit}" for arch in STUDY_ARCHS)
