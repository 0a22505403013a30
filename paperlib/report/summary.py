"""The book's front page: every claim of the paper, our evidence, and a verdict."""

from __future__ import annotations

import pandas as pd

from paperlib.core.registry import ARCHITECTURE_EXPERIMENTS, EXPERIMENTS, PAPER_ARCHITECTURES
from paperlib.core.settings import EligibilityConfig
from paperlib.report.adversarial import adversarial_verdicts
from paperlib.report.attribution import attribution_verdicts
from paperlib.report.audit_tables import audit_failures
from paperlib.report.claims_robustness import PRIMARY_ENDPOINT, paper_robustness_verdicts
from paperlib.report.claims_stability import paper_stability_verdicts
from paperlib.report.common import grid_results, penalties_in, strength_label, verdict_row
from paperlib.report.density import density_verdicts
from paperlib.report.judge import PRIMARY
from paperlib.report.strength_sweep import penalty_table, strongest_kept
from paperlib.report.verdicts import Verdict
from paperlib.run.profiles import load_profile
from paperlib.run.provenance import changed_since
from paperlib.run.results import Result

JUDGES = dict(
    zip(EXPERIMENTS, (density_verdicts, adversarial_verdicts, attribution_verdicts), strict=True)
)


def judge_profiles(profiles: list[str]) -> dict[str, list[Verdict]]:
    """Every claim's verdicts, per profile: judged once, read by ``claims_table`` and
    ``claims_evidence``."""
    return {profile: all_verdicts(profile) for profile in profiles}


def all_verdicts(profile: str) -> list[Verdict]:
    """Every claim's verdict from one profile's results, under its ``testable`` rules:
    at the primary strengths, with the secondary endpoints."""
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
    ran (secondary verdicts: no correction across strengths), one column per profile
    and strength, the paper's c marked."""
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
                if v.endpoint != _primary_endpoint(v):
                    continue
                row = rows.setdefault(v.claim, {"claim": v.statement})
                row[f"{profile}, {strength_label(c)}"] = v.verdict
    return pd.DataFrame(list(rows.values())).astype(object).fillna(NO_RESULTS)


def _primary_endpoint(v: Verdict) -> str:
    """The claim's primary endpoint (the plan's words, or experiment 2's short name)."""
    return PRIMARY_ENDPOINT if v.claim == "regularization-helps" else v.endpoint


def paper_verdicts(archs: list[str] | None = None) -> dict[str, Verdict]:
    """The verdict rule applied to the paper's own published numbers (Tables 1 and 2), by
    claim: on the rows of ``archs`` (their counterparts in the paper), or on all of them."""
    archs = archs or list(PAPER_ARCHITECTURES)
    found = paper_robustness_verdicts(archs) + paper_stability_verdicts()
    return {v.claim: v for v in found}


def leading(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts that lead: primary strength, primary endpoint."""
    return [v for v in verdicts if v.role == PRIMARY]


def claims_table(judged: dict[str, list[Verdict]]) -> pd.DataFrame:
    """One row per claim: where the paper makes it, each profile's primary verdict with its
    effect, interval, margin and minimum detectable effect, then what the same rule
    concludes from the paper's own numbers, on the family the first profile judges and on
    the paper's full family ("no numbers published" for claims read off its figures)."""
    first = next(iter(judged), None)
    archs = _architectures(first) if first else []
    same, full = paper_verdicts(archs), paper_verdicts()
    rows: dict[str, dict] = {}
    for profile, verdicts in judged.items():
        for v in leading(verdicts):
            row = rows.setdefault(v.claim, {"claim": v.statement, "paper": v.where})
            shown = verdict_row(v)
            row[f"verdict ({profile})"] = v.verdict
            row[f"effect [95 % interval], margin, MDE ({profile})"] = (
                f"{shown['effect']} {shown['95 % interval']}, margin {shown['margin']}, "
                f"MDE {shown['MDE']} {shown['unit']}; {shown['seeds x images']}"
            )
    for claim, row in rows.items():
        row[f"paper's numbers, same family as {first}"] = _label(same.get(claim))
        row["paper's numbers, full family"] = _label(full.get(claim))
    columns = ["claim", "paper"]
    for profile in judged:
        columns += [f"verdict ({profile})", f"effect [95 % interval], margin, MDE ({profile})"]
    columns += [f"paper's numbers, same family as {first}", "paper's numbers, full family"]
    table = pd.DataFrame(list(rows.values()), columns=columns)
    return table.astype(object).fillna(NO_RESULTS)  # a column of no verdicts is float NaN


# Experiment 1 trains one network of its own; experiments 2 and 3 vary the architecture.
def architecture_verdicts(
    results: dict[str, list[Result]], rules: EligibilityConfig
) -> dict[str, list[Verdict]]:
    """Each claim of experiments 2 and 3 judged on one architecture's results at a time
    (results by experiment), leading verdicts only, for the claims with a comparison on
    that architecture; {} unless the results span two or more architectures.

    Secondary: the plan's families pool the architectures, each comparison against its
    own architecture's margin. The paper's effects differ by architecture (largest on
    ResNet), and a pooled verdict cannot say on which architecture a claim holds."""
    archs = dict.fromkeys(
        r.params.arch for e in ARCHITECTURE_EXPERIMENTS for r in results.get(e, [])
    )
    if len(archs) < 2:
        return {}
    return {arch: verdicts_on(arch, results, rules) for arch in archs}


def verdicts_on(
    arch: str, results: dict[str, list[Result]], rules: EligibilityConfig
) -> list[Verdict]:
    """The leading verdicts of experiments 2 and 3 judged on one architecture's results
    alone (results by experiment), for the claims with a comparison on it."""
    verdicts = []
    for experiment in ARCHITECTURE_EXPERIMENTS:
        mine = [r for r in results.get(experiment, []) if r.params.arch == arch]
        if mine:  # a claim about another architecture alone compares nothing here
            verdicts += [
                v
                for v in leading(JUDGES[experiment](mine, rules))
                if any(row["arch"] == arch for row in v.comparisons)
            ]
    return verdicts


def verdicts_by_architecture(profiles: list[str]) -> pd.DataFrame:
    """One row per claim and one column per profile and architecture, for each profile
    that ran more than one: the verdict on that architecture alone, with its effect,
    interval and margin (``architecture_verdicts``). Empty when no profile ran two."""
    rows: dict[str, dict] = {}
    for profile in profiles:
        results = {e: grid_results(profile, e)[0] for e in ARCHITECTURE_EXPERIMENTS}
        rules = load_profile(profile).testable
        for arch, verdicts in architecture_verdicts(results, rules).items():
            for v in verdicts:
                shown = verdict_row(v)
                row = rows.setdefault(v.claim, {"claim": v.statement})
                row[f"{profile}, {arch}"] = (
                    v.verdict  # nothing was measured that could decide it
                    if v.effect is None
                    else f"{v.verdict}: {shown['effect']} {shown['95 % interval']}, margin "
                    f"{shown['margin']} {shown['unit']}; {shown['seeds x images']}"
                )
    return pd.DataFrame(list(rows.values())).astype(object).fillna(NO_RESULTS)


def _label(v: Verdict | None) -> str:
    return v.verdict if v else "no numbers published"


def _architectures(profile: str) -> list[str]:
    results, _ = grid_results(profile, "adversarial")
    return list(dict.fromkeys(r.params.arch for r in results))


def claims_evidence(judged: dict[str, list[Verdict]]) -> pd.DataFrame:
    """The evidence behind ``claims_table``: one row per claim, profile, endpoint and role,
    the verdict beside the numbers that decided it."""
    rows = [
        {"profile": profile, **verdict_row(v)}
        for profile, verdicts in judged.items()
        for v in verdicts
    ]
    columns = ["claim", "profile", "endpoint", "role", "verdict", "effect", "95 % interval"]
    columns += ["margin", "MDE", "unit", "seeds x images", "our evidence"]
    table = pd.DataFrame(rows, columns=columns)
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
            p = r.provenance
            facts["cell hours"] += p.wall_seconds / 3600
            facts["devices"].add(p.device)
            facts["data"].add(p.data_source)
            facts["commits"].add((p.commit or "unknown")[:10] + ("*" if p.dirty else ""))
    return {k: ", ".join(sorted(v)) if isinstance(v, set) else v for k, v in facts.items()}


def strength_table(profiles: list[str]) -> pd.DataFrame:
    """Per profile, architecture and regularizer: the strongest penalty that keeps clean
    accuracy within the margin of the base model (``strength_sweep.strongest_kept``)."""
    tables = []
    for profile in profiles:
        results, _ = grid_results(profile, "adversarial")
        if results:
            table = strongest_kept(penalty_table(results))
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
        flagged = {r.cell: audit_failures(r) for r in results}
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


def stale_results(profiles: list[str]) -> pd.DataFrame:
    """Per profile and commit its results were made at: the cell code (``paperlib/core``
    and the cell notebooks) whose behaviour has changed since (a change listed in
    ``params/cell_behaviour.yaml``), so that a reader knows which numbers today's code
    would not reproduce as they stand. Empty when nothing is stale."""
    rows = []
    for profile in profiles:
        commits = set()
        for experiment in EXPERIMENTS:
            results, _ = grid_results(profile, experiment)
            commits |= {r.provenance.commit for r in results}
        for commit in sorted(commits, key=str):
            changed = changed_since(commit)
            if changed is None or changed:
                rows.append(
                    {
                        "profile": profile,
                        "made at commit": (commit or "unknown")[:10],
                        "changed since": ", ".join(changed)
                        if changed
                        else "cannot tell: the commit is not in this checkout",
                    }
                )
    return pd.DataFrame(rows, columns=["profile", "made at commit", "changed since"])
