"""The block analysis of paired seeds x images (paperlib.core.stats.block_effect): its
intervals cover the truth at their nominal rate, and its pieces agree with hand values."""

from __future__ import annotations

import numpy as np
import pytest

from paperlib.core.stats import (
    block_effect,
    design_se,
    minimum_detectable_effect,
    variance_components,
)

TRUE_EFFECT = 0.05


def _draw(rng, seeds: int, images: int, seed_sd: float, image_sd: float, noise_sd: float):
    """Paired differences with a seed effect, an image effect and noise, all random."""
    return (
        TRUE_EFFECT
        + rng.normal(0, seed_sd, (seeds, 1))
        + rng.normal(0, image_sd, (1, images))
        + rng.normal(0, noise_sd, (seeds, images))
    )


@pytest.mark.parametrize(
    ("seeds", "images", "seed_sd", "image_sd", "noise_sd"),
    [
        (8, 300, 0.02, 0.05, 0.3),  # the study's design: every variance present
        (3, 1000, 0.03, 0.1, 0.4),  # few seeds: the seed term dominates
        (5, 200, 0.0, 0.1, 0.3),  # no seed variance at all
        (10, 1, 0.05, 0.0, 0.0),  # one value per seed: a paired t-test over seeds
    ],
)
def test_intervals_cover_the_truth_at_their_nominal_rate(
    seeds, images, seed_sd, image_sd, noise_sd
):
    rng = np.random.default_rng(7)
    draws = 500
    covered = sum(
        low <= TRUE_EFFECT <= high
        for low, high in (
            block_effect(_draw(rng, seeds, images, seed_sd, image_sd, noise_sd)).interval()
            for _ in range(draws)
        )
    )
    assert 0.92 <= covered / draws <= 0.98


def test_two_seeds_err_on_the_wide_side():
    rng = np.random.default_rng(2)
    covered = sum(
        low <= TRUE_EFFECT <= high
        for low, high in (
            block_effect(_draw(rng, 2, 1000, 0.03, 0.1, 0.4)).interval() for _ in range(300)
        )
    )
    assert covered / 300 >= 0.95


def test_leaving_out_the_seed_variance_would_undercover():
    """The check above can fail: intervals from the images alone (one seed's worth of
    variance) miss the truth far more often when seeds vary."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(200):
        d = _draw(rng, 8, 300, 0.05, 0.05, 0.3)
        image_only = block_effect(d.mean(axis=0, keepdims=True))  # seeds averaged away
        low, high = image_only.interval()
        covered += low <= TRUE_EFFECT <= high
    assert covered / 200 < 0.8


def test_one_seed_takes_its_seed_variance_from_the_prior_and_says_so():
    d = np.tile([0.0, 1.0], 50)[None, :]  # mean 0.5, image variance 0.2525 / 100
    without = block_effect(d)
    with_prior = block_effect(d, prior_seed_variance=0.01)
    assert without.seed_variance == "none" and with_prior.seed_variance == "prior"
    assert without.se == pytest.approx(np.sqrt(d.var(ddof=1) / 100))
    assert with_prior.se == pytest.approx(np.sqrt(d.var(ddof=1) / 100 + 0.01))


def test_one_value_per_seed_is_a_paired_t_test():
    from scipy.stats import ttest_1samp

    d = np.array([[0.3], [0.1], [0.4], [0.2]])
    effect = block_effect(d)
    assert effect.effect == pytest.approx(0.25) and effect.df == 3
    assert effect.p_above(0.0) == pytest.approx(
        ttest_1samp(d[:, 0], 0, alternative="greater").pvalue
    )
    assert effect.p_below(0.5) == pytest.approx(
        ttest_1samp(d[:, 0], 0.5, alternative="less").pvalue
    )


def test_images_missing_in_a_seed_are_left_out():
    d = np.array([[1.0, np.nan, 0.0], [1.0, 5.0, 0.0]])
    effect = block_effect(d)
    assert effect.images == 2 and effect.effect == pytest.approx(0.5)


def test_p_values_do_not_floor():
    """An overwhelming effect gets a p-value far below any bootstrap's 1 / 2001."""
    d = np.full((8, 1000), 0.3) + np.random.default_rng(0).normal(0, 0.1, (8, 1000))
    assert block_effect(d).p_above(0.0) < 1e-6


def test_variance_components_and_the_design_se_predict_the_observed_spread():
    rng = np.random.default_rng(11)
    tables = [_draw(rng, 6, 400, 0.03, 0.05, 0.3) for _ in range(300)]
    seed_var, image_var = np.mean([variance_components(t) for t in tables], axis=0)
    predicted = design_se(seed_var, image_var, 6, 400)
    observed = np.std([t.mean() for t in tables])
    assert predicted == pytest.approx(observed, rel=0.15)


def test_the_minimum_detectable_effect_is_detected_at_the_planned_power():
    rng = np.random.default_rng(5)
    se = design_se(0.03**2, 0.3**2, 6, 400)
    mde = minimum_detectable_effect(se, df=5, alpha=0.05)
    hits = 0
    for _ in range(300):
        d = mde + rng.normal(0, 0.03, (6, 1)) + rng.normal(0, 0.3, (6, 400))
        hits += block_effect(d).p_above(0.0) < 0.05
    assert 0.7 <= hits / 300 <= 0.92


def test_a_table_without_spread_takes_the_prior_instead_of_a_zero_width_interval():
    """Ten seeds that all converge in the same epoch: the data estimate no variance, so
    the prior stands in; without one the interval keeps its zero width."""
    d = np.zeros((10, 1))
    with_prior = block_effect(d, prior_seed_variance=0.25)
    assert with_prior.seed_variance == "prior" and with_prior.df == 9
    assert with_prior.se == pytest.approx(0.5 / np.sqrt(10))
    low, high = with_prior.interval()
    assert low < 0 < high and high == pytest.approx(2.262 * 0.5 / np.sqrt(10), rel=1e-3)
    assert block_effect(d).se == 0.0
    assert block_effect(np.zeros((4, 50)), prior_seed_variance=0.01).se == pytest.approx(0.05)
