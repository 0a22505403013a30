"""Tests for paperlib.report.verdicts: testability, exact comparisons, Holm, and the one rule
that turns a family of comparisons into a verdict."""

from __future__ import annotations

import numpy as np
import pytest

from paperlib.core.eligibility import collapse_reason, prediction_entropy, untestable_reason
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import holm, wilson_interval
from paperlib.report.verdicts import (
    GAIN,
    INCONCLUSIVE,
    LOSS,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    TIE,
    accuracy_interval,
    compare,
    compare_counts,
    family_verdict,
    mcnemar_p,
    outcomes,
)

CFG = EligibilityConfig()


def test_prediction_entropy_is_zero_for_one_class_and_one_for_all_equally():
    assert prediction_entropy([0, 0, 0, 50, 0, 0, 0, 0, 0, 0]) == 0.0
    assert prediction_entropy([7] * 10) == pytest.approx(1.0)


def test_a_constant_predictor_is_collapsed_whatever_its_accuracy():
    reason = collapse_reason(0.1, [0, 0, 2000, 0, 0, 0, 0, 0, 0, 0], CFG)
    assert reason.startswith("collapsed: one class predicted for 100 % of images")
    assert "(prediction entropy 0.00 < 0.5)" in reason  # never "-0.00"
    assert collapse_reason(0.15, [100] * 10, CFG).startswith("near chance")
    assert collapse_reason(0.65, [100] * 10, CFG) == ""


def test_a_model_far_below_its_base_is_untestable_only_against_base():
    assert untestable_reason(0.5, [100] * 10, CFG) == ""
    assert "lost 15.0 points" in untestable_reason(0.5, [100] * 10, CFG, base_accuracy=0.65)
    assert untestable_reason(0.62, [100] * 10, CFG, base_accuracy=0.65) == ""


def test_no_accuracy_interval_is_degenerate_at_the_edge_of_the_range():
    low, high = wilson_interval(0, 200)
    assert low == 0.0 and 0.015 < high < 0.02  # 0 of 200 still allows about 1.9 %
    low, high = accuracy_interval([np.zeros(200)])
    assert low == 0.0 and high > 0.015
    low, high = accuracy_interval([np.ones(200), np.ones(200)])
    assert low < 0.995 and high == 1.0  # Wilson on 400 of 400


def test_mcnemar_is_exact_on_the_discordant_images():
    a = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    assert mcnemar_p(a, np.zeros(100, bool)) == pytest.approx(2 * 0.5**10)
    assert mcnemar_p(a, a) == 1.0


def test_compare_one_seed_each_uses_mcnemar_and_several_seeds_the_bootstrap():
    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.3
    better = base | (rng.random(400) < 0.2)
    one = compare([better], [base])
    assert one["p"] == pytest.approx(mcnemar_p(better, base))
    assert one["low"] > 0 and one["diff"] == pytest.approx(better.mean() - base.mean())
    several = compare([better, better], [base, base])
    assert several["p"] < 0.01 and several["low"] > 0


def test_seed_to_seed_variance_widens_the_comparison():
    """Two seeds of a regularized model that disagree wildly (40 % and 80 %) against a
    steady base at 55 %: images alone would call the 5-point gain certain; the seeds
    make it uncertain."""
    rng = np.random.default_rng(1)
    n = 2000
    base = [rng.random(n) < 0.55, rng.random(n) < 0.55]
    other = [rng.random(n) < 0.40, rng.random(n) < 0.80]
    pooled = compare([np.concatenate(other)], [np.concatenate(base)])
    seeds = compare(other, base)
    assert pooled["low"] > 0  # as if the seeds were more images
    assert seeds["low"] < 0 < seeds["high"]
    assert seeds["p"] > 0.05


def test_unpaired_counts_use_fisher_and_a_newcombe_interval():
    result = compare_counts(171, 98, 500)  # 34.2 % against 19.6 % of 500
    assert result["diff"] == pytest.approx(0.146)
    assert result["low"] > 0 and result["p"] < 1e-5
    assert compare_counts(50, 50, 500)["p"] == pytest.approx(1.0)


def test_holm_steps_down_until_the_first_p_value_it_keeps():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert holm([0.001, 0.02, 0.04]) == [True, True, True]
    assert holm([]) == []


def test_outcomes_apply_holm_over_the_testable_comparisons_only():
    family = [
        {"diff": 0.1, "p": 0.001},
        {"diff": -0.1, "p": 0.02},
        {"diff": 0.1, "p": 0.5},
        {"diff": 0.5, "p": 0.0, "untestable": "collapsed: one class"},
    ]
    assert outcomes(family) == [GAIN, LOSS, TIE, NOT_TESTABLE]


@pytest.mark.parametrize(
    ("marks", "share", "expected"),
    [
        ([GAIN, GAIN, GAIN, TIE], 0.75, REPRODUCED),  # built to satisfy "nearly all"
        ([LOSS, LOSS, GAIN, TIE], 0.75, NOT_REPRODUCED),  # built to contradict it
        ([TIE, TIE, GAIN, TIE], 0.75, INCONCLUSIVE),  # overlapping intervals
        ([NOT_TESTABLE, NOT_TESTABLE], 0.75, NOT_TESTABLE),  # collapsed models only
        ([GAIN, TIE, NOT_TESTABLE], 1.0, INCONCLUSIVE),  # "every" needs every one
        ([GAIN] * 9 + [LOSS], 1.0, NOT_REPRODUCED),  # one counterexample sinks "every"
        ([GAIN] * 20 + [LOSS] * 2 + [TIE] * 5, 0.75, INCONCLUSIVE),  # 25 of 27 could gain
        ([GAIN] * 10 + [LOSS] * 7 + [TIE] * 10, 0.75, NOT_REPRODUCED),  # at most 20 of 27
    ],
)
def test_the_one_rule(marks, share, expected):
    verdict, counts = family_verdict(marks, share)
    assert verdict == expected
    assert f"{sum(m != NOT_TESTABLE for m in marks)} testable" in counts
