"""Tests for paperlib.core.stats (bootstrap intervals, bit packing) and paperlib.report (tables
and verdicts), on result dicts shaped like the ones notebooks/density.py writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import changed, make_result

from paperlib.core.stats import (
    bootstrap_ci,
    hierarchical_ci,
    pack_bits,
    pack_outcomes,
    unpack_bits,
)
from paperlib.report.common import grid_results, run_table
from paperlib.report.density import (
    density_beside,
    density_display,
    density_table,
    density_verdicts,
)
from paperlib.run.results import Result, result_json, write_result
from paperlib.run.store import result_path, write_json

# --- stats ----------------------------------------------------------------------------


def test_bootstrap_ci_brackets_the_mean_within_the_data_range():
    values = np.arange(20, dtype=float)
    low, high = bootstrap_ci(values)
    assert 0.0 <= low < values.mean() < high <= 19.0
    # the standard error of the mean is 5.77 / sqrt(20) = 1.29; a 95% interval is ~ +-2.5
    assert high - low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(20), rel=0.15)


def test_bootstrap_ci_of_a_constant_is_that_constant():
    assert bootstrap_ci([3.5] * 17) == (3.5, 3.5)
    assert bootstrap_ci([True] * 10) == (1.0, 1.0)


def test_bootstrap_ci_is_deterministic_per_seed():
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(values, seed=4) == bootstrap_ci(values, seed=4)
    assert bootstrap_ci(values, seed=4) != bootstrap_ci(values, seed=5)
    assert all(isinstance(v, float) for v in bootstrap_ci(values))


def test_bootstrap_ci_of_booleans_is_an_accuracy_interval():
    flags = np.zeros(1000, dtype=bool)
    flags[:700] = True
    low, high = bootstrap_ci(flags)
    half_width = 1.96 * math.sqrt(0.7 * 0.3 / 1000)  # 0.028
    assert low == pytest.approx(0.7 - half_width, abs=0.006)
    assert high == pytest.approx(0.7 + half_width, abs=0.006)


def test_pack_bits_writes_one_character_per_image():
    assert pack_bits([True, False, True, True]) == "1011"
    assert pack_bits(np.array([0, 1, 0], dtype=np.uint8)) == "010"
    assert pack_bits([]) == ""


def test_unpack_bits_reads_them_back():
    assert unpack_bits("1011").tolist() == [True, False, True, True]
    assert unpack_bits("").tolist() == []
    flags = np.random.default_rng(0).random(1001) < 0.3
    back = unpack_bits(pack_bits(flags))
    assert back.dtype == bool
    assert np.array_equal(back, flags)


def test_pack_outcomes_packs_every_tensor_and_keeps_the_mappings_and_lists_around_them():
    import torch

    outcomes = {
        "clean": torch.tensor([True, False]),
        "per_attack": {"fgsm": torch.tensor([False, False]), "pgd": np.array([1, 0])},
        "per_radius": [torch.tensor([True, True]), torch.tensor([False, True])],
    }
    assert pack_outcomes(outcomes) == {
        "clean": "10",
        "per_attack": {"fgsm": "00", "pgd": "10"},
        "per_radius": ["11", "01"],
    }


# --- report: fake results -------------------------------------------------------------

N_TEST = 1000


def _base_flags() -> np.ndarray:
    """1,000 test outcomes, 700 of them correct, in a seeded order."""
    flags = np.zeros(N_TEST, dtype=bool)
    flags[:700] = True
    return np.random.default_rng(0).permutation(flags)


def _worse_flags(base: np.ndarray, lost: int) -> np.ndarray:
    """``base`` with the first ``lost`` correct images now wrong."""
    flags = base.copy()
    flags[np.flatnonzero(base)[:lost]] = False
    return flags


def _result(lam, density, density_ci, flags, train_accuracy=0.9, commit="0123456789abcdef", seed=0):
    """A result as notebooks/density.py writes it, built by the same writer."""
    return make_result(
        "density",
        {"activity_l1": lam, "seed": seed},
        {
            "average_density": density,
            "average_density_ci": tuple(density_ci),
            "test_accuracy": float(flags.mean()),
            "test_accuracy_ci": bootstrap_ci(flags),
            "train_accuracy": train_accuracy,
            "val_accuracy": 0.5,
            "predicted_counts": [len(flags) // 10] * 10,  # every class predicted alike
        },
        provenance={"commit": commit},
        settings={"epochs": 2},
        test_correct=pack_bits(flags),
    )


def _verdicts(results) -> dict[str, str]:
    return {v.claim: v.verdict for v in density_verdicts(results)}


# --- report: the table ----------------------------------------------------------------


def test_density_table_sorts_by_lambda_and_carries_the_metrics():
    base = _base_flags()
    results = [
        _result(1e-4, 0.20, (0.18, 0.22), _worse_flags(base, 100), train_accuracy=0.6),
        _result(0.0, 0.80, (0.78, 0.82), base, train_accuracy=0.95),
        _result(1e-6, 0.45, (0.43, 0.47), base, train_accuracy=0.9),
    ]
    table = density_table(results)
    assert table["lambda"].tolist() == [0.0, 1e-6, 1e-4]
    assert table["density"].tolist() == [0.80, 0.45, 0.20]
    assert table["density_low"].tolist() == [0.78, 0.43, 0.18]
    assert table["density_high"].tolist() == [0.82, 0.47, 0.22]
    assert table["train_acc"].tolist() == [0.95, 0.9, 0.6]
    assert table["test_acc"].tolist() == pytest.approx([0.7, 0.7, 0.6])
    assert (table["test_acc_low"] < table["test_acc"]).all()
    assert (table["test_acc"] < table["test_acc_high"]).all()


def test_density_beside_sets_profiles_side_by_side_and_marks_missing_lambdas():
    base = _base_flags()
    cpu = [_result(0.0, 0.80, (0.78, 0.82), base), _result(1e-6, 0.45, (0.43, 0.47), base)]
    paper = [_result(0.0, 0.60, (0.59, 0.61), base)]
    table = density_beside({"cpu": cpu, "paper": paper})
    assert list(table.columns) == [
        "density (cpu)",
        "test acc. % (cpu)",
        "density (paper)",
        "test acc. % (paper)",
    ]
    assert table.loc["0", "density (paper)"].startswith("0.600 [0.590, 0.610]")
    assert table.loc["1e-06", "density (cpu)"].startswith("0.450")
    assert table.loc["1e-06", "density (paper)"] == "missing"


def test_delta_column_is_the_paired_change_against_lambda_zero():
    base = _base_flags()
    table = density_table(
        [
            _result(0.0, 0.8, (0.78, 0.82), base),
            _result(1e-6, 0.45, (0.43, 0.47), base),
            _result(1e-4, 0.2, (0.18, 0.22), _worse_flags(base, 100)),
        ]
    )
    # lambda = 0 against itself, and an identical model: exactly no change
    for row in (0, 1):
        assert table.loc[row, ["delta_test_acc", "delta_low", "delta_high"]].tolist() == [0, 0, 0]
    # 100 of 1,000 images lost: -0.1, with a paired standard error of sqrt(.1 * .9 / 1000)
    worse = table.iloc[2]
    half_width = 1.96 * math.sqrt(0.1 * 0.9 / N_TEST)  # 0.0186
    assert worse.delta_test_acc == pytest.approx(-0.1)
    assert worse.delta_low == pytest.approx(-0.1 - half_width, abs=0.005)
    assert worse.delta_high == pytest.approx(-0.1 + half_width, abs=0.005)


def test_delta_column_is_nan_without_a_lambda_zero_model():
    table = density_table([_result(1e-5, 0.3, (0.28, 0.32), _base_flags())])
    assert table[["delta_test_acc", "delta_low", "delta_high"]].isna().all(axis=None)


def test_density_display_formats_percentages_and_signed_deltas():
    base = _base_flags()
    display = density_display(
        density_table(
            [
                _result(0.0, 0.8, (0.78, 0.82), base, train_accuracy=0.95),
                _result(1e-4, 0.2, (0.18, 0.22), _worse_flags(base, 100)),
            ]
        )
    )
    assert display["λ"].tolist() == ["0", "0.0001"]
    assert display["average density"].tolist() == ["0.800 [0.780, 0.820]", "0.200 [0.180, 0.220]"]
    assert display["train acc. (%)"].tolist() == ["95.0", "90.0"]
    assert display["test acc. (%)"][0].startswith("70.0 [")
    assert display["test acc. (%)"][1].startswith("60.0 [")
    deltas = display["Δ test acc. vs λ=0 (pt)"].tolist()
    assert deltas[0] == "+0.0 [+0.0, +0.0]"
    assert deltas[1].startswith("-10.0 [-1")


# --- report: verdicts -----------------------------------------------------------------


def _collapsed(result: Result) -> Result:
    """``result`` from a model that predicts one class for every test image."""
    return changed(result, "metrics.predicted_counts", [N_TEST] + [0] * 9)


# --- report: provenance and missing cells ---------------------------------------------


def test_run_table_shortens_the_commit_and_marks_dirty_trees():
    base = _base_flags()
    clean = _result(0.0, 0.8, (0.78, 0.82), base)
    dirty = _result(1e-4, 0.3, (0.28, 0.32), base)
    dirty = changed(dirty, "provenance.dirty", True)
    unknown = _result(1e-5, 0.3, (0.28, 0.32), base, commit=None)
    unknown = changed(unknown, "provenance.dirty", None)
    table = run_table([clean, dirty, unknown])
    assert table["cell"].tolist() == ["lambda-0.0-s0", "lambda-0.0001-s0", "lambda-1e-05-s0"]
    assert table["commit"].tolist() == ["0123456789", "0123456789*", "-"]
    assert table["wall time (s)"].tolist() == [12.5] * 3
    assert table["data"].tolist() == ["synthetic (no CIFAR-10 copy found)"] * 3


def test_grid_results_ignores_stale_cells_and_lists_missing_ones_in_order(smoke_env):
    for lam, seed in ((1e-4, 1), (0.0, 0)):
        write_result(_result(lam, 0.4, (0.3, 0.5), np.ones(10), seed=seed))
    # "lambda-0.0": an id of an older grid without seeds, in an otherwise valid result.
    old = {**result_json(_result(0.0, 0.4, (0.3, 0.5), np.ones(10))), "cell": "lambda-0.0"}
    write_json(result_path("smoke", "density", "lambda-0.0"), old)
    results, missing = grid_results("smoke", "density")
    assert sorted(r.cell for r in results) == ["lambda-0.0-s0", "lambda-0.0001-s1"]
    assert missing == ["lambda-0.0-s1", "lambda-0.0001-s0"]


# --- intervals with seeds as the unit -------------------------------------------------


def _seeded_runs(seed_sd: float, n_seeds: int, n_images: int = 400, seed: int = 0):
    """Per-image scores: each seed adds its own offset (sd ``seed_sd``) to the same
    per-image values, as when seeds differ in skill on the same test images."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.5, 0.1, n_images)
    return [images + rng.normal(0, seed_sd) for _ in range(n_seeds)]


def test_hierarchical_ci_widens_with_seed_to_seed_variance():
    quiet = hierarchical_ci(_seeded_runs(0.0, 5))
    noisy = hierarchical_ci(_seeded_runs(0.2, 5))
    assert (noisy[1] - noisy[0]) > 5 * (quiet[1] - quiet[0])


def test_hierarchical_ci_covers_the_true_mean_at_about_its_level():
    """Seeds drawn around a known mean of 0.5: over many synthetic experiments the
    interval covers it in most of them (a bootstrap over 8 seeds runs a little narrow)."""
    covered = 0
    for trial in range(60):
        low, high = hierarchical_ci(_seeded_runs(0.1, 8, seed=trial), resamples=400)
        covered += low <= 0.5 <= high
    assert covered >= 0.8 * 60


def test_hierarchical_ci_with_one_seed_is_the_image_bootstrap():
    (run,) = _seeded_runs(0.0, 1)
    assert hierarchical_ci([run]) == pytest.approx(bootstrap_ci(run), abs=0.01)


def test_hierarchical_ci_of_a_difference_keeps_images_paired():
    runs = _seeded_runs(0.0, 3)
    shifted = [r + 0.1 for r in runs]  # every image exactly 0.1 better
    low, high = hierarchical_ci(shifted, runs)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)


def test_hierarchical_ci_rejects_runs_over_different_images():
    with pytest.raises(ValueError, match="same images"):
        hierarchical_ci([np.ones(5)], [np.ones(4)])


def test_density_table_averages_seeds_and_puts_their_spread_in_the_interval():
    base = _base_flags()
    worse = _worse_flags(base, 100)  # 60 % correct
    results = [
        _result(0.0, 0.80, (0.78, 0.82), base, seed=0),
        _result(0.0, 0.82, (0.80, 0.84), base, seed=1),
        _result(1e-4, 0.20, (0.18, 0.22), worse, seed=0),
        _result(1e-4, 0.30, (0.28, 0.32), base, seed=1),
    ]
    table = density_table(results).set_index("lambda")
    assert list(table.seeds) == [2, 2]
    assert table.loc[1e-4, "density"] == pytest.approx(0.25)
    assert table.loc[1e-4, "test_acc"] == pytest.approx(0.65)
    assert table.loc[1e-4, "delta_test_acc"] == pytest.approx(-0.05)
    # One seed matches base exactly, the other is 10 points worse: the interval of the
    # change must reach from about -10 points to 0, not be the width of one seed's.
    low, high = table.loc[1e-4, ["delta_low", "delta_high"]]
    assert low == pytest.approx(-0.1, abs=0.02) and high == pytest.approx(0.0, abs=0.005)
