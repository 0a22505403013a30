"""The book's front page: every claim of the paper, our evidence, and a verdict."""

from __future__ import annotations

import pandas as pd

from paperlib.core.registry import EXPERIMENTS
from paperlib.report import adversarial as adversarial_report
from paperlib.report import attribution as attribution_report
from paperlib.report.adversarial import adversarial_verdicts
from paperlib.report.attribution import attribution_verdicts
from paperlib.report.common import grid_results, penalties_in, strength_label
from paperlib.report.density import density_verdicts
from paperlib.report.verdicts import Verdict
from paperlib.run.profiles import load_profile

JUDGES = dict(
    zip(EXPERIMENTS, (density_verdicts, adversarial_verdicts, attribution_verdicts), strict=True)
)


def judge_profiles(profiles: list[str]) -> dict[str, list[Verdict]]:
    """Every claim's verdict, per profile: judged once, read by ``claims_table`` and
    ``claims_evidence``."""
    return {profile: all_verdicts(profile) for profile in profiles}


def all_verdicts(profile: str) -> list[Verdict]:
    """Every claim's verdict from one profile's results, under its ``testable`` rules."""
    rules = load_profile(profile).testable
    verdicts = []
    for experiment, judge in JUDGES.items():
        results, _ = grid_results(profile, experiment)
        if results:
            verdicts += judge(results, rules)
    return verdicts


# What a table shows for a profile that has no results for a claim (never NaN).
NO_RESULTS = "no results"


def verdicts_by_strength(profiles: list[str]) -> pd.DataFrame:
    """The claims of experiments 2 and 3 judged at every penalty strength each profile
    ran, one column per profile and strength (the paper's c marked): at the paper's
    c some models stop learning and their claims are not testable, while a weaker
    strength may still answer the question the paper asks."""
    rows: dict[str, dict] = {}
    for profile in profiles:
        rules = load_profile(profile).testable
        adversarial, _ = grid_results(profile, "adversarial")
        attribution, _ = grid_results(profile, "attribution")
        for c in penalties_in(adversarial):
            found = adversarial_verdicts(adversarial, rules, penalty=c)
            if attribution:
                found += attribution_verdicts(attribution, rules, penalty=c)
            for v in found:
                row = rows.setdefault(v.claim, {"claim": v.statement})
                row[f"{profile}, {strength_label(c)}"] = v.verdict
    return pd.DataFrame(list(rows.values())).astype(object).fillna(NO_RESULTS)


def paper_verdicts() -> dict[str, Verdict]:
    """The verdict rule applied to the paper's own published numbers (Tables 1 and 2),
    by claim; the claims read off figures have none."""
    found = adversarial_report.paper_verdicts() + attribution_report.paper_verdicts()
    return {v.claim: v for v in found}


def claims_table(judged: dict[str, list[Verdict]]) -> pd.DataFrame:
    """One row per claim: where the paper makes it, what the verdict rule concludes from
    the paper's own numbers, then each profile's verdict ("no results" where that
    profile has none for the claim). ``claims_evidence`` gives the evidence."""
    calibration = paper_verdicts()
    rows: dict[str, dict] = {}
    for profile, verdicts in judged.items():
        for v in verdicts:
            row = rows.setdefault(v.claim, {"claim": v.statement, "paper": v.where})
            own = calibration.get(v.claim)
            row["from the paper's own numbers"] = own.verdict if own else "no numbers published"
            row[f"verdict ({profile})"] = v.verdict
    columns = ["claim", "paper", "from the paper's own numbers"]
    columns += [f"verdict ({p})" for p in judged]
    table = pd.DataFrame(list(rows.values()), columns=columns)
    return table.astype(object).fillna(NO_RESULTS)  # a column of no verdicts is float NaN


def claims_evidence(judged: dict[str, list[Verdict]]) -> pd.DataFrame:
    """The evidence behind ``claims_table``: one row per claim and profile with results,
    the verdict beside the numbers that decided it."""
    rows = [
        {"claim": v.statement, "profile": profile, "verdict": v.verdict, "evidence": v.evidence}
        for profile, verdicts in judged.items()
        for v in verdicts
    ]
    table = pd.DataFrame(rows, columns=["claim", "profile", "verdict", "evidence"])
    # Claims in the order the paper makes them, each claim's profiles together.
    order = {claim: i for i, claim in enumerate(dict.fromkeys(table.claim))}
    return table.sort_values("claim", key=lambda col: col.map(order), kind="stable")


def run_facts(profile: str) -> dict:
    """Where and how long: devices, total cell time, cells done and missing, data."""
    facts = {
        "profile": profile,
        "cells": 0,
        "missing": 0,
        "cell hours": 0.0,
        "devices": set(),
        "data": set(),
        "commits": set(),
    }
    for experiment in EXPERIMENTS:
        results, missing = grid_results(profile, experiment)
        facts["cells"] += len(results)
        facts["missing"] += len(missing)
        for r in results:
            p = r["provenance"]
            facts["cell hours"] += p["wall_seconds"] / 3600
            facts["devices"].add(p["device"])
            facts["data"].add(p["data_source"])
            facts["commits"].add((p["commit"] or "unknown")[:10] + ("*" if p["dirty"] else ""))
    return {k: ", ".join(sorted(v)) if isinstance(v, set) else v for k, v in facts.items()}


def strength_table(profiles: list[str]) -> pd.DataFrame:
    """Per profile, architecture and regularizer: the strongest penalty that keeps clean
    accuracy within the margin of the base model (``adversarial_report.strongest_kept``)."""
    tables = []
    for profile in profiles:
        results, _ = grid_results(profile, "adversarial")
        if results:
            table = adversarial_report.strongest_kept(adversarial_report.penalty_table(results))
            tables.append(table.assign(profile=profile))
    if not tables:
        return pd.DataFrame()
    return pd.concat(tables).set_index(["profile", "arch", "regularizer"])


def audit_summary(profiles: list[str]) -> pd.DataFrame:
    """Per profile: how many experiment-2 cells the gradient-masking audit flagged, and
    which checks they failed."""
    rows = []
    for profile in profiles:
        results, _ = grid_results(profile, "adversarial")
        if not results:
            continue
        flagged = {r["cell"]: adversarial_report.audit_failures(r) for r in results}
        flagged = {cell: failed for cell, failed in flagged.items() if failed}
        rows.append(
            {
                "profile": profile,
                "cells audited": len(results),
                "cells flagged": len(flagged),
                "failed checks": "; ".join(
                    f"{cell} ({', '.join(failed)})" for cell, failed in sorted(flagged.items())
                )
                or "none",
            }
        )
    return pd.DataFrame(rows).set_index("profile") if rows else pd.DataFrame()
