"""Which models may decide (core.eligibility), and the small statistics the verdicts and
tables share: Wilson's interval, McNemar's exact test, Holm's procedure."""

from __future__ import annotations

import numpy as np
import pytest

from paperlib.core.eligibility import collapse_reason, prediction_entropy, untestable_reason
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import holm, mcnemar_p, spearman, spearman_ci, wilson_interval
from paperlib.report.verdicts import accuracy_interval

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


def test_holm_steps_down_until_the_first_p_value_it_keeps():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert holm([0.001, 0.02, 0.04]) == [True, True, True]
    assert holm([]) == []


def test_the_spearman_interval_covers_the_point_and_ignores_degenerate_resamples():
    """A strong monotone relation gives an interval around its correlation; with four
    pairs some resamples draw one pair four times (no correlation), and they are
    dropped instead of making the interval NaN."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = x + rng.normal(scale=0.5, size=40)
    low, high = spearman_ci(x, y)
    assert 0.5 < low < spearman(x, y) < high <= 1.0
    low, high = spearman_ci([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0])
    assert np.isfinite([low, high]).all() and -1.0 <= low <= high <= 1.0
