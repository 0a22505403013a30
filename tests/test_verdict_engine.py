"""The analysis plan, the margins it derives from the paper, the primary-strength rule, and
the verdict engine's pages (the ground truth of its labels: test_ground_truth.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import changed, make_result

from paperlib.core.settings import ConfigError, EligibilityConfig
from paperlib.core.stats import pack_bits
from paperlib.report.arms import primary_strengths
from paperlib.report.claims_density import density_claim_verdicts
from paperlib.report.claims_robustness import paper_robustness_verdicts
from paperlib.report.claims_stability import paper_stability_verdicts
from paperlib.report.common import (
    comparisons_frame,
    seed_frame,
    verdict_table,
    verdicts_at_each_strength,
)
from paperlib.report.judge import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PRIMARY,
    REPRODUCED,
    SECONDARY,
    UNDERPOWERED,
)
from paperlib.report.margins import margin
from paperlib.run.analysis import load_analysis_plan

PLAN = load_analysis_plan()


# --- the plan ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("alpha: 0.05", "alphaa: 0.05"),
        ("margin: table1-median-gain", "margin: table1-mean-gain"),
        ("test: non-inferiority", "test: equivalence"),
    ],
)
def test_a_wrong_key_or_value_in_the_plan_is_named(tmp_path, change, message):
    text = (load_analysis_plan.__globals__["PARAMS_DIR"] / "analysis.yaml").read_text()
    assert change in text
    path = tmp_path / "analysis.yaml"
    path.write_text(text.replace(change, message, 1))
    key = message.split(":")[0] if message.startswith("alphaa") else message.split(": ")[1]
    with pytest.raises(ConfigError, match=key):
        load_analysis_plan(path)


def test_every_claim_of_the_paper_has_a_plan_entry():
    from paperlib.report.paper import CLAIMS

    assert set(PLAN.claims) == set(CLAIMS)


@pytest.mark.parametrize(
    ("claim", "arch", "expected"),
    [
        ("regularization-helps", "resnet26", 0.104),  # ResNet-50's row stands in
        ("regularization-helps", "vgg16", 0.030),
        ("elastic-most-consistent", "resnet26", 0.156),
        ("elastic-most-consistent", "vgg16", 0.020),
        ("regularized-stabler-occlusion", None, 0.146),
        ("regularized-stabler-gradcam", None, 0.192),
        ("l1-stablest-occlusion", None, 0.046),
        ("elastic-most-stable", None, 0.024),
    ],
)
def test_margins_are_the_papers_own_effects_as_the_plan_states_them(claim, arch, expected):
    """The numbers in the plan's derivations are what the code derives from the tables."""
    assert margin(PLAN.claims[claim], arch) == pytest.approx(expected, abs=5e-4)
    derivation = PLAN.claims[claim].margin_derivation
    shown = f"{100 * expected:.1f}"
    assert shown in derivation or shown.rstrip("0").rstrip(".") in derivation


# --- the primary strength ------------------------------------------------------------


def _cell(reg: str, c: float, seed: int, val: float, test: float) -> dict:
    history = [{"epoch": 1, "train_acc": 0.5, "train_loss": 1, "val_loss": 1, "val_acc": val}]
    return make_result(
        "adversarial",
        {"arch": "vgg16", "regularizer": reg, "penalty": c, "seed": seed},
        {"clean": {"accuracy": test, "predicted_counts": [10] * 10}},
        history=history,
    )


def test_the_primary_strength_is_the_strongest_within_two_validation_points_of_base():
    """Validation decides: at 1e-3 the test accuracy would pass, the validation fails."""
    results = [_cell("base", 0.0, s, val=0.70, test=0.70) for s in (0, 1)]
    results += [_cell("l1", 1e-3, s, val=0.66, test=0.70) for s in (0, 1)]
    results += [_cell("l1", 1e-4, s, val=0.69, test=0.60) for s in (0, 1)]
    results += [_cell("l2", 1e-2, s, val=0.30, test=0.30) for s in (0, 1)]
    primary = primary_strengths(results, PLAN)
    assert primary["vgg16", "l1"] == 1e-4
    assert primary["vgg16", "l2"] is None  # no strength kept its accuracy
    assert primary["vgg16", "elastic"] is None  # never ran
    committed = dataclasses.replace(PLAN, chosen={"smoke": {"vgg16": {"l1": 1e-3}}})
    assert primary_strengths(results, committed)["vgg16", "l1"] == 1e-3
    assert primary_strengths(results, committed)["vgg16", "l2"] is None  # fixed: none
    # an architecture the plan has not fixed yet, such as a new stage's pilot, gets the rule
    other = dataclasses.replace(PLAN, chosen={"smoke": {"resnet26": {"l1": 1e-3}}})
    assert primary_strengths(results, other)["vgg16", "l1"] == 1e-4


# --- experiment 1 -------------------------------------------------------------------


def _density_cell(lam: float, seed: int, density: float, accuracy: float, collapsed=False):
    n = 1000
    rng = np.random.default_rng(seed)
    return make_result(
        "density",
        {"activity_l1": lam, "seed": seed},
        {
            "average_density": density + rng.normal(0, 0.003),
            "test_accuracy": accuracy,
            "predicted_counts": [n] + [0] * 9 if collapsed else [n // 10] * 10,
        },
        test_correct=pack_bits(rng.random(n) < accuracy),
    )


def test_density_claims_are_judged_over_paired_seeds():
    results = [_density_cell(0.0, s, 0.6, 0.55) for s in range(5)]
    results += [_density_cell(1e-4, s, 0.3, 0.56) for s in range(5)]
    falls, accurate = density_claim_verdicts(results, plan=PLAN)
    assert falls.verdict == REPRODUCED and falls.seeds == 5
    assert accurate.images == 1000 and accurate.margin == pytest.approx(0.02)
    results[5:] = [_density_cell(1e-4, s, 0.3, 0.1, collapsed=True) for s in range(5)]
    assert {v.verdict for v in density_claim_verdicts(results, plan=PLAN)} == {NOT_TESTABLE}


def test_the_forest_plot_draws_a_non_inferiority_margin_below_zero():
    """ "As accurate" tolerates a loss: its margin band runs from zero down to -2 points,
    while "density falls" asks for a gain: its band runs from zero up to 0.05."""
    from paperlib.report.forest import forest_plot

    results = [_density_cell(0.0, s, 0.6, 0.7) for s in range(5)]
    results += [_density_cell(1e-4, s, 0.3, 0.7) for s in range(5)]
    verdicts = density_claim_verdicts(results, plan=PLAN)
    for claim, width in (("sparse-as-accurate", -2.0), ("density-falls", 0.05)):
        fig = forest_plot(verdicts, claim)
        bars = [p.get_width() for p in fig.axes[0].patches]
        assert bars == pytest.approx([width]), claim


# --- the paper's own numbers ----------------------------------------------------------


def test_the_papers_tables_are_judged_by_the_same_rule_on_the_same_family():
    ours = {v.claim: v for v in paper_robustness_verdicts(["vgg16", "resnet26"], PLAN)}
    full = {v.claim: v for v in paper_robustness_verdicts(["resnet50", "mobilenet", "vgg16"], PLAN)}
    assert len(ours["regularization-helps"].comparisons) == 18  # VGG-16 and ResNet rows
    assert len(full["regularization-helps"].comparisons) == 27
    # One seed of 500 images per entry cannot resolve a 3-point margin on VGG-16.
    assert full["regularization-helps"].verdict == UNDERPOWERED
    stability = {v.claim: v.verdict for v in paper_stability_verdicts(PLAN)}
    assert stability["regularized-stabler-gradcam"] == REPRODUCED


# --- the pages ------------------------------------------------------------------------


def test_results_pages_show_the_primary_verdicts_first_then_each_strength():
    from synthetic import Design, adversarial_results

    from paperlib.report.adversarial import adversarial_verdicts

    results = adversarial_results(
        {"vgg16": 0.1, "resnet26": 0.2}, Design(3, 200), np.random.default_rng(0)
    )
    table = verdict_table(
        verdicts_at_each_strength(adversarial_verdicts, results, EligibilityConfig())
    )
    helps = table[
        (table.claim.str.startswith("After adversarial"))
        & (table.endpoint == "transfer minus placebo")
    ]
    assert (
        helps.role.tolist() == [PRIMARY, SECONDARY] and helps.strength.tolist()[1] == "c = 0.0001"
    )
    assert {"effect", "95 % interval", "margin", "MDE", "seeds x images"} <= set(table.columns)
    frame = comparisons_frame(adversarial_verdicts(results))
    assert {"claim", "comparison", "effect", "low", "high", "seeds", "images"} <= set(frame.columns)


def test_the_seed_table_holds_each_comparisons_paired_seeds_and_their_mean_is_its_effect():
    """Seeds are the unit: the per-seed table names the seeds both arms ran (a seed that
    one arm lacks is left out, not paired with another), and its seeds average to the
    comparison's effect where every seed has every image (the primary endpoint)."""
    from synthetic import Design, adversarial_results

    from paperlib.report.adversarial import adversarial_verdicts

    results = adversarial_results(
        {"vgg16": 0.1, "resnet26": 0.2}, Design(3, 200), np.random.default_rng(0)
    )
    results = [r for r in results if not (r.params.regularizer == "l1" and r.params.seed == 1)]
    verdicts = adversarial_verdicts(results)
    per_seed = seed_frame(verdicts)
    keys = ["claim", "endpoint", "strength", "comparison"]
    frame = comparisons_frame(verdicts).dropna(subset=["effect"]).set_index(keys)
    seeds = per_seed.groupby(keys)["seed"].apply(sorted)
    l1 = [k for k in seeds.index if k[0] == "regularization-helps" and " l1" in k[3]]
    assert l1 and all(seeds[k] == [0, 2] for k in l1)
    assert all(seeds[k] == [0, 1, 2] for k in seeds.index if " l2" in k[3])
    means = per_seed[per_seed.endpoint == "transfer minus placebo"].groupby(keys)["effect"].mean()
    shared = frame.index.intersection(means.index)
    assert len(shared) > 10
    np.testing.assert_allclose(means[shared], frame.loc[shared, "effect"], atol=2e-3)


def test_the_summary_says_no_results_for_a_profile_without_any(smoke_env):
    from paperlib.report.summary import NO_RESULTS, claims_table, judge_profiles
    from paperlib.run.results import write_result

    for reg in ("base", "l1", "l2", "elastic"):
        for seed in (0, 1):
            write_result(_cell(reg, 0.0 if reg == "base" else 1e-4, seed, val=0.1, test=0.1))
    judged = judge_profiles(["smoke", "cpu"])
    table = claims_table(judged).set_index("claim")
    assert set(table["verdict (cpu)"]) == {NO_RESULTS}
    assert not table.isna().any().any()
    assert "paper's numbers, full family" in table.columns
    assert NOT_REPRODUCED not in set(table["verdict (smoke)"])  # collapsed models decide nothing


def test_results_made_with_other_cell_code_are_marked_stale(smoke_env):
    """A result made at the first commit (whose core and notebooks differ from HEAD's, or
    which a shallow clone lacks) is stale; one made at HEAD is not."""
    import subprocess

    from paperlib.report.summary import stale_results
    from paperlib.run.results import write_result
    from paperlib.run.store import REPO_ROOT

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)

    head = git("rev-parse", "HEAD").stdout.strip()
    first = git("rev-list", "--max-parents=0", "HEAD").stdout.split()[0]
    result = _cell("base", 0.0, 0, val=0.7, test=0.7)
    write_result(changed(result, "provenance.commit", head))
    assert stale_results(["smoke"]).empty
    write_result(changed(result, "provenance.commit", first))
    (row,) = stale_results(["smoke"]).to_dict("records")
    assert row["made at commit"] == first[:10]
    assert "paperlib/core" in row["changed since"] or "cannot tell" in row["changed since"]


def test_only_a_listed_behaviour_change_makes_a_result_stale(smoke_env, monkeypatch):
    """Cell code edited after the last listed behaviour change (a refactor, a GPU-only
    path) leaves results current; a result made before a listed change whose cell code
    differs from it is stale."""
    import subprocess

    from paperlib.run import provenance
    from paperlib.run.store import REPO_ROOT

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)

    head = git("rev-parse", "HEAD").stdout.strip()
    first = git("rev-list", "--max-parents=0", "HEAD").stdout.split()[0]
    if first == head or git("cat-file", "-e", first).returncode != 0:
        pytest.skip("needs the repository's history")
    monkeypatch.setattr(provenance, "last_behaviour_change", lambda: first)
    assert provenance.changed_since(head) == []  # everything since is declared inert
    assert provenance.changed_since(first) == []
    monkeypatch.setattr(provenance, "last_behaviour_change", lambda: head)
    assert "paperlib/core" in " ".join(provenance.changed_since(first))
    assert provenance.changed_since("0" * 40) is None  # a commit this checkout lacks
    assert provenance.changed_since(None) is None


def test_the_last_behaviour_change_is_a_commit_of_this_history():
    from paperlib.run.provenance import last_behaviour_change

    assert len(last_behaviour_change()) == 40


def test_the_design_power_names_where_its_variances_come_from_and_falls_with_seeds(smoke_env):
    from paperlib.report.power import design_power

    few, many = design_power("smoke", seeds=2), design_power("smoke", seeds=12)
    helps = few.set_index("claim").loc["regularization-helps"]
    assert helps["variances from"] == "prior (no results)"
    assert helps["images"] == 32  # the smoke profile's attacked images
    assert (many.MDE < few.MDE).all()  # more seeds, smaller detectable effects
    found = many.set_index("claim")["seeds for MDE <= margin"]
    assert set(map(str, found)) <= {str(s) for s in range(2, 31)} | {"> 30"}


def test_the_design_power_of_one_architecture_uses_its_own_margins_family_and_seeds(smoke_env):
    """`paperlib plan --arch`: a stage that adds an architecture sizes its seeds from that
    architecture alone, against its own margins (ResNet's, not the pooled mean)."""
    from paperlib.report.margins import margin
    from paperlib.report.power import PER_ARCH, design_power

    plan = load_analysis_plan()
    pooled = design_power("smoke").set_index("claim")
    resnet = design_power("smoke", arch="resnet50").set_index("claim")
    assert set(resnet.index) == set(PER_ARCH)  # experiments 2 and 3 only
    helps = resnet.loc["regularization-helps"]
    assert helps["margin"] == pytest.approx(
        100 * margin(plan.claims["regularization-helps"], "resnet50"), abs=1e-3
    )
    assert helps["margin"] != pooled.loc["regularization-helps", "margin"]
    assert helps["comparisons"] == PER_ARCH["regularization-helps"]  # one architecture's
    assert pooled.loc["regularization-helps", "comparisons"] == 3 * helps["comparisons"]
    assert helps["seeds"] == 1  # the smoke grid's ResNet-50 base seeds (VGG-16 has two)
    with pytest.raises(ConfigError, match="runs no 'resnet26'"):
        design_power("smoke", arch="resnet26")


def test_a_profile_without_results_gets_empty_tables_that_still_name_their_columns():
    """A results page indexes its tables by column names; with no results yet (the
    study's attribution before its cells ran) each table is empty, not columnless, and
    the stability claims read "no results" instead of looking up a profile named ""."""
    from paperlib.report.attribution import attribution_verdicts, per_architecture
    from paperlib.report.common import run_table
    from paperlib.report.density import density_table

    assert {"arch", "regularizer", "penalty", "seed"} <= set(per_architecture([]).columns)
    assert "lambda" in density_table([]).columns
    assert "cell" in run_table([]).columns
    assert {"claim", "strength", "comparison"} <= set(comparisons_frame([]).columns)
    assert {v.verdict for v in attribution_verdicts([])} <= {"inconclusive"}


def test_the_headline_interval_pools_the_seeds_every_comparison_has_and_keeps_the_prior():
    """A family's headline effect is its comparisons' mean over the seeds they share;
    with a single shared seed the prior seed variance widens its interval exactly as it
    widens each comparison's (left out, a one-seed headline was narrower than the
    comparison it summarizes)."""
    import pandas as pd

    from paperlib.report.judge import comparison, judge

    plan = load_analysis_plan()
    claim = plan.claims["density-falls"]
    rng = np.random.default_rng(0)
    one_seed = pd.DataFrame(rng.normal(0.02, 0.01, (1, 50)), index=[0])
    alone = comparison("lambda = 1e-05", "single_layer", one_seed, 0.05, "", 0.01)
    verdict = judge(plan, claim, [alone])
    assert (verdict.low, verdict.high) == pytest.approx(alone.effect.interval())
    assert verdict.seeds == 1

    three = pd.DataFrame(rng.normal(0.1, 0.01, (3, 50)), index=[0, 1, 2])
    other = comparison("lambda = 1e-04", "single_layer", three, 0.05, "", 0.01)
    verdict = judge(plan, claim, [alone, other])
    pooled = comparison("mean", "single_layer", (one_seed + three.loc[[0]]) / 2, 0.05, "", 0.01)
    assert verdict.low is not None and verdict.seeds == 1
    assert (verdict.effect, verdict.low, verdict.high) == pytest.approx(
        (pooled.effect.effect, *pooled.effect.interval())
    )


def test_seeds_that_all_agree_get_the_prior_width_and_the_evidence_says_so():
    """Ten seeds converge in the same epoch, base and regularized alike: the difference is
    0 every time. The interval takes the plan's prior seed variance (zero width would claim
    a certainty the design lacks), still rules out the one-epoch margin, and the evidence
    names the reason."""
    import pandas as pd

    from paperlib.report.judge import comparison, judge

    claim = PLAN.claims["regularized-converge-slower"]
    prior = PLAN.prior_seed_sd["epochs"]
    same = comparison("vgg16 l2", "vgg16", pd.DataFrame(np.zeros((10, 1))), 1.0, "", prior)
    verdict = judge(PLAN, claim, [same])
    half = 2.262 * prior / np.sqrt(10)
    assert (verdict.low, verdict.high) == pytest.approx((-half, half), rel=1e-3)
    assert verdict.mde > 0 and verdict.verdict == NOT_REPRODUCED
    assert "every seed and image alike" in verdict.evidence


def test_a_results_page_refuses_a_profile_without_results_and_names_the_grid_to_run(smoke_env):
    from paperlib.report.common import page_results
    from paperlib.run.results import ResultError

    with pytest.raises(ResultError, match="paperlib grid --profile smoke --experiment density"):
        page_results("smoke", "density")


def test_the_attribution_page_names_the_cells_that_explain_another_model_than_the_attacked(
    smoke_env, monkeypatch
):
    from helpers import mark_done

    from paperlib.report.common import page_results
    from paperlib.run.results import write_result

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    mark_done("smoke", "adversarial")
    moved = mark_done("smoke", "attribution")[0]
    page_results("smoke", "attribution")
    assert not any("Not the attacked model" in text for text in shown)
    write_result(changed(moved, "metrics.clean_accuracy", 0.6))  # another model's accuracy
    page_results("smoke", "attribution")
    (note,) = [text for text in shown if "Not the attacked model" in text]
    assert note.endswith(f": {moved.cell}")


def test_an_untestable_comparisons_reason_does_not_squeeze_the_forest_plot():
    """A comparison that decides nothing carries its reason as text in the panel; laid out
    with the figure, a long reason collapsed the axes (matplotlib warned and drew none)."""
    import io
    import warnings

    from paperlib.report.forest import forest_plot
    from paperlib.report.judge import comparison, judge

    claim = PLAN.claims["elastic-most-stable"]
    reason = "lost 2.2 points of clean accuracy against base (> 2)"
    rng = np.random.default_rng(1)
    comparisons = [  # as the study's: zero near the right end of the axis
        comparison(f"vgg16 {method} {rival} - elastic c=3e-05", "vgg16", diffs, 0.024, why)
        for method in ("occlusion", "gradcam")
        for rival, diffs, why in (
            ("l1", None, reason),
            ("l2", rng.normal(-0.1, 1.5, (10, 300)), ""),
        )
    ]
    fig = forest_plot([judge(PLAN, claim, comparisons)], claim.name)
    fig.suptitle(claim.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "axes sizes collapsed to zero" fails the test
        fig.savefig(io.BytesIO(), format="png")
    assert fig.axes[0].get_position().width > 0.3


def test_each_architecture_gets_its_own_verdict_beside_the_pooled_one():
    """Regularization helps ResNet-26 by twice its margin and VGG-16 not at all: judged
    alone, each architecture gets its own label, which the pooled family cannot show."""
    from synthetic import Design, adversarial_results

    from paperlib.core.settings import EligibilityConfig
    from paperlib.report.adversarial import adversarial_verdicts
    from paperlib.report.summary import architecture_verdicts

    results = adversarial_results(
        {"vgg16": 0.0, "resnet26": 0.2}, Design(6, 500), np.random.default_rng(1)
    )
    rules = EligibilityConfig()
    by_arch = architecture_verdicts({"adversarial": results}, rules)
    helps = {
        arch: next(v for v in verdicts if v.claim == "regularization-helps")
        for arch, verdicts in by_arch.items()
    }
    assert helps["resnet26"].verdict == REPRODUCED
    assert helps["vgg16"].verdict == NOT_REPRODUCED
    assert all(v.role == PRIMARY for verdicts in by_arch.values() for v in verdicts)
    # Figure 3's claims are about VGG-16 alone: ResNet-26 has no comparison to judge.
    claims = {arch: {v.claim for v in verdicts} for arch, verdicts in by_arch.items()}
    assert claims["vgg16"] - claims["resnet26"] == {"regularized-converge-slower", "base-overfits"}
    # On one architecture's results it is the verdict the plan's own family gives them.
    vgg = [r for r in results if r.params.arch == "vgg16"]
    alone = next(
        v
        for v in adversarial_verdicts(vgg, rules)
        if v.claim == "regularization-helps" and v.role == PRIMARY
    )
    assert (alone.verdict, alone.effect) == (helps["vgg16"].verdict, helps["vgg16"].effect)
    assert architecture_verdicts({"adversarial": vgg}, rules) == {}
