"""Tests for experiment 2's tables and verdicts (paperlib.report.adversarial), on results
built by the same writer as notebooks/adversarial.py's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import changed, make_result

from paperlib.core.audit import CHECKS
from paperlib.core.records import AttackReport, as_json
from paperlib.core.registry import ATTACKS, PAPER_ARCHITECTURES, REGULARIZERS
from paperlib.core.stats import pack_bits
from paperlib.report.adversarial import adversarial_verdicts, clean_and_undefended, deepfool_rho
from paperlib.report.audit_tables import FLAG, audit_details, audit_table, cross_attack_table
from paperlib.report.claims_robustness import epochs_to_converge, val_loss_rise
from paperlib.report.paper import TABLE1
from paperlib.report.strength_sweep import (
    accuracy_kept,
    penalty_table,
    sparsity_robustness,
    strongest_kept,
)
from paperlib.report.table1 import table1, table1_beside, table1_display
from paperlib.run.results import Result

# --- fake results, shaped like notebooks/adversarial.py's `result` --------------------

N_IMAGES = 200


def _bits(fraction: float, n: int = N_IMAGES) -> str:
    """The first ``round(fraction * n)`` images correct, the rest wrong."""
    k = round(fraction * n)
    return pack_bits(np.arange(n) < k)


def _history(train_acc, val_loss) -> list[dict]:
    return [
        {"epoch": i + 1, "train_acc": a, "val_acc": a - 0.05, "train_loss": 2 - a, "val_loss": v}
        for i, (a, v) in enumerate(zip(train_acc, val_loss, strict=True))
    ]


STEADY = _history([0.3, 0.6, 0.8, 0.9, 0.95], [1.6, 1.2, 1.0, 0.9, 0.85])


def _attack_report(accuracy: float, rho: float | None = 0.02) -> dict:
    return as_json(
        AttackReport(
            accuracy=accuracy,
            success_rate=1 - accuracy,
            linf=0.3,
            l2=1.5,
            rho=rho,
            rho_ci=(None, None) if rho is None else (rho - 0.005, rho + 0.005),
            fooled=0 if rho is None else 150,
            not_fooled=20,
        )
    )


def _result(
    arch,
    reg,
    seed=0,
    defended=0.4,
    history=STEADY,
    clean=0.8,
    penalty=None,
    pgd=0.2,
    density=0.4,
    transfer=None,
    flagged=False,
    collapsed=False,
) -> dict:
    """``defended``: the fraction correct under every attack (white-box reading), or a
    dict per attack; ``transfer``: the same for the transfer reading (default: as
    ``defended``). ``penalty``: c, by default the paper's 0.01 (0 for base).
    ``flagged``: the undefended model failed the large-eps check of the audit;
    ``collapsed``: the model predicts one class for every test image."""
    per_attack = defended if isinstance(defended, dict) else dict.fromkeys(ATTACKS, defended)
    transfer = per_attack if transfer is None else dict.fromkeys(ATTACKS, transfer)
    penalty = (0.0 if reg == "base" else 0.01) if penalty is None else penalty
    return make_result(
        "adversarial",
        {"arch": arch, "regularizer": reg, "penalty": penalty, "seed": seed},
        {
            "clean": {
                "accuracy": clean,
                "accuracy_ci": [clean - 0.05, clean + 0.05],
                "predicted_counts": [1000] + [0] * 9 if collapsed else [100] * 10,
                "train_accuracy": clean + 0.1,
            },
            "sparsity": {
                "activation_density": density,
                "activation_density_per_layer": {"features.3": density},
                "weight_sparsity": {"0.0001": 0.1, "0.001": 0.25, "0.01": 0.5},
                "hoyer": 1 - density,
                "hoyer_per_layer_mean": 1 - density,
            },
            "undefended": {a: _attack_report(0.1) for a in ATTACKS},
            "defended": {
                a: {
                    **_attack_report(v),
                    "clean_accuracy": clean,
                    "accuracy_ci": [v, v],
                    "transfer_accuracy": transfer[a],
                    "transfer_accuracy_ci": [transfer[a], transfer[a]],
                }
                for a, v in per_attack.items()
            },
            "standard_eps": {
                "eps": 8 / 255,
                "fgsm": _attack_report(0.3),
                "pgd": _attack_report(pgd),
            },
            "eps_sweep": {"eps": [1 / 255, 0.3], "fgsm": [0.7, 0.1], "pgd": [0.6, 0.0]},
            "endpoints": {
                "eps": [2 / 255, 4 / 255, 8 / 255],
                "pgd": [pgd] * 3,
                "autoattack": [pgd] * 3,
            },
            "autoattack": {
                "eps": 8 / 255,
                **_attack_report(pgd),
                "components": ["apgd-ce", "square"],
                "fooled_by": {"apgd-ce": 10, "square": 0},
            },
            "cross_attack": {
                trained: {
                    a: {"accuracy": per_attack[a], "transfer_accuracy": transfer[a]}
                    for a in ATTACKS
                }
                for trained in ATTACKS
            },
            "audit": {
                "checks": {
                    "undefended": {
                        name: {"passed": not (flagged and name == "large_eps_breaks"), "detail": ""}
                        for name in CHECKS
                    }
                },
                "failures": ["undefended: large_eps_breaks"] if flagged else [],
            },
        },
        correct={
            "clean": _bits(clean),
            "undefended": {a: _bits(0.1) for a in ATTACKS},
            "defended": {a: _bits(v) for a, v in per_attack.items()},
            "transfer": {a: _bits(v) for a, v in transfer.items()},
            "autoattack": _bits(pgd),
        },
        history=history,
    )


def _grid(defended_by_reg: dict, seeds=(0,), histories=None) -> list[Result]:
    """Every architecture x regularizer; ``defended_by_reg`` as ``_result``'s ``defended``."""
    histories = histories or {}
    return [
        _result(arch, reg, seed, defended_by_reg[reg], histories.get(reg, STEADY))
        for arch in PAPER_ARCHITECTURES
        for reg in REGULARIZERS
        for seed in seeds
    ]


# --- Table 1 --------------------------------------------------------------------------

# Table 1 of the paper, as printed (DeepFool, FGSM, PGD), independent of paperlib.report.paper.
PAPER_TABLE1 = {
    ("resnet50", "base"): (19.60, 23.80, 18.00),
    ("resnet50", "l1"): (34.20, 16.00, 28.40),
    ("resnet50", "l2"): (25.20, 11.40, 13.20),
    ("resnet50", "elastic"): (33.80, 37.40, 38.20),
    ("mobilenet", "base"): (11.40, 22.20, 22.00),
    ("mobilenet", "l1"): (27.20, 22.60, 28.00),
    ("mobilenet", "l2"): (38.40, 30.20, 25.40),
    ("mobilenet", "elastic"): (25.40, 27.00, 19.40),
    ("vgg16", "base"): (8.40, 7.60, 1.60),
    ("vgg16", "l1"): (10.80, 8.00, 8.00),
    ("vgg16", "l2"): (11.30, 10.20, 8.00),
    ("vgg16", "elastic"): (11.40, 11.40, 10.80),
}


def _distinct_accuracy(arch: str, reg: str, attack: str) -> float:
    """A different, known fraction (a multiple of 1/200) for every cell and attack."""
    i, j, k = PAPER_ARCHITECTURES.index(arch), REGULARIZERS.index(reg), ATTACKS.index(attack)
    return (20 + 30 * i + 7 * j + 2 * k) / N_IMAGES


def test_table1_reports_each_cells_accuracy_in_percent_beside_the_papers():
    results = [
        _result(arch, reg, defended={a: _distinct_accuracy(arch, reg, a) for a in ATTACKS})
        for arch in PAPER_ARCHITECTURES
        for reg in REGULARIZERS
    ]
    table = table1(results)
    assert len(table) == 3 * 4 * 3
    for row in table.itertuples():
        expected = 100 * _distinct_accuracy(row.arch, row.regularizer, row.attack)
        assert row.ours == pytest.approx(expected)
        assert row.low < row.ours < row.high
        p = row.ours / 100  # a 95% interval is about +-1.96 binomial standard errors
        half_width = 1.96 * 100 * math.sqrt(p * (1 - p) / N_IMAGES)
        assert row.high - row.low == pytest.approx(2 * half_width, rel=0.2)
        assert row.seeds == 1
        assert row.paper == PAPER_TABLE1[(row.arch, row.regularizer)][ATTACKS.index(row.attack)]
    assert TABLE1 == {a: {r: PAPER_TABLE1[(a, r)] for r in REGULARIZERS} for a in TABLE1}


def test_table1_averages_seeds_image_by_image_and_marks_missing_cells():
    results = [
        _result("vgg16", "l2", seed=0, defended=0.2),
        _result("vgg16", "l2", seed=1, defended=0.3),
    ]
    table = table1(results).set_index(["arch", "regularizer", "attack"])
    for attack in ATTACKS:
        row = table.loc[("vgg16", "l2", attack)]
        assert row.ours == pytest.approx(25.0)
        assert row.seeds == 2
        # Images 0-39 right in both seeds, 40-59 in one: per-image means 1, 0.5 and 0.
        assert row.low < 25.0 < row.high
    missing = table.loc[("vgg16", "elastic", "pgd")]
    assert np.isnan(missing.ours) and np.isnan(missing.low) and np.isnan(missing.high)
    assert missing.seeds == 0
    assert missing.paper == 10.80
    # Architectures without any cell are left out (the cpu grid runs VGG-16 only).
    assert set(table.index.get_level_values("arch")) == {"vgg16"}


def test_table1_beside_sets_each_profile_beside_the_paper_and_marks_missing_cells():
    cpu = [r for r in _grid(dict.fromkeys(REGULARIZERS, 0.25)) if r.params.arch == "vgg16"]
    paper = [_result("vgg16", "l1", defended=0.5)]
    table = table1_beside({"cpu": cpu, "paper": paper})
    # A profile may be called "paper" too: its column must not replace the paper's.
    assert list(table.columns) == [
        "ours (cpu, transfer)",
        "ours (paper, transfer)",
        "paper (published)",
    ]
    # Only the rows some profile ran, and one line that names the rest.
    assert table.index.names == ["arch", "regularizer", "attack"] and len(table) == 12
    assert table.attrs["not run by any profile"] == "mobilenet, resnet50"
    row = table.loc[("vgg16", "l1", "fgsm")]
    assert row.iloc[0].startswith("25.0 [") and row.iloc[1].startswith("50.0 [")
    # 8.0 % of 500 images is within noise of chance: the paper's entry says so.
    assert row.iloc[2] == f"{PAPER_TABLE1[('vgg16', 'l1')][1]:.1f} ≈chance"
    # The paper grid has VGG-16's L2 (not run here): missing, not absent.
    assert table.loc[("vgg16", "l2", "pgd")].tolist()[1] == "missing"


def test_paper_entries_near_chance_are_those_whose_interval_holds_ten_percent():
    from paperlib.report.table1 import near_chance, paper_near_chance

    assert near_chance(10.8) and near_chance(8.0) and not near_chance(1.6)
    assert not near_chance(19.6) and not near_chance(13.2)
    flagged = paper_near_chance()
    assert len(flagged) == 13 and set(flagged.arch) == {"resnet50", "mobilenet", "vgg16"}


def test_clean_and_undefended_lists_each_run_in_percent():
    table = clean_and_undefended([_result("mobilenet", "l1", seed=3, clean=0.75)])
    (row,) = table.to_dict("records")
    assert (row["arch"], row["regularizer"], row["penalty"], row["seed"]) == (
        "mobilenet",
        "l1",
        0.01,
        3,
    )
    assert row["clean"] == 75.0 and row["activation density"] == 40.0
    assert all(row[f"{a} (undefended)"] == 10.0 for a in ATTACKS)
    assert row["fgsm @ 8/255"] == 30.0 and row["pgd @ 8/255"] == 20.0
    assert row["DeepFool L2"] == 1.5


# --- the verdicts ---------------------------------------------------------------------


def _verdict(results: list[Result], claim: str, **kwargs):
    by_claim = {v.claim: v for v in adversarial_verdicts(results, **kwargs)}
    assert list(by_claim) == [
        "regularization-helps",
        "elastic-most-consistent",
        "same-accuracy-slower",
        "regularized-converge-slower",
        "base-overfits",
    ]
    return by_claim[claim]


# --- training curves: convergence and overfitting -------------------------------------


def test_epochs_to_converge_is_the_first_epoch_at_90_percent_of_the_best_train_accuracy():
    history = _history([0.1, 0.5, 0.85, 0.9, 0.95], [2.0] * 5)
    assert epochs_to_converge(history) == 4  # 0.9 * 0.95 = 0.855: 0.85 falls short
    assert epochs_to_converge(history, fraction=0.5) == 2
    assert epochs_to_converge(history, fraction=1.0) == 5
    assert epochs_to_converge(_history([0.5, 0.5], [1.0, 1.0])) == 1


def test_val_loss_rise_is_the_last_loss_minus_the_minimum():
    assert val_loss_rise(_history([0.5] * 5, [2.0, 1.5, 1.2, 1.4, 1.8])) == pytest.approx(0.6)
    assert val_loss_rise(_history([0.5] * 3, [2.0, 1.5, 1.0])) == 0.0


FAST = _history([0.5, 0.9, 0.95, 0.96, 0.97], [1.0, 0.8, 0.7, 0.7, 0.7])
SLOW = _history([0.2, 0.4, 0.6, 0.9, 0.97], [1.0, 0.8, 0.7, 0.7, 0.7])
OVERFITS = _history([0.5, 0.9, 0.95, 0.96, 0.97], [1.0, 0.8, 0.7, 1.3, 2.1])


# --- the penalty axis -----------------------------------------------------------------


def test_paper_tables_use_only_the_papers_strength():
    """Weaker strengths must never be averaged into Table 1's c = 0.01 rows."""
    results = [
        _result("vgg16", "base", defended=0.5),
        _result("vgg16", "l1", defended=0.2),  # c = 0.01
        _result("vgg16", "l1", defended=0.9, penalty=1e-4),
    ]
    table = table1(results).set_index(["arch", "regularizer", "attack"])
    assert table.loc[("vgg16", "l1", "fgsm")].ours == pytest.approx(20.0)
    assert table.loc[("vgg16", "l1", "fgsm")].seeds == 1
    assert set(table.index.get_level_values("arch")) == {"vgg16"}  # only what ran


def _sweep(clean_by_cell: dict) -> list[Result]:
    """VGG-16 results from ``{(regularizer, c, seed): clean accuracy}``."""
    return [
        _result("vgg16", reg, seed=seed, clean=acc, penalty=c)
        for (reg, c, seed), acc in clean_by_cell.items()
    ]


def test_accuracy_kept_compares_each_strength_with_the_mean_of_base_seeds():
    table = penalty_table(
        _sweep(
            {
                ("base", 0.0, 0): 0.70,
                ("base", 0.0, 1): 0.66,  # base mean: 68 %
                ("l1", 0.01, 0): 0.10,  # collapsed
                ("l1", 1e-3, 0): 0.62,  # 6 points below: not kept
                ("l1", 1e-4, 0): 0.64,  # 4 points below: kept
                ("l2", 0.01, 0): 0.69,
            }
        )
    )
    kept = accuracy_kept(table).set_index(["regularizer", "penalty"])
    assert kept.loc[("l1", 0.01)]["drop (pt)"] == pytest.approx(58.0)
    assert list(kept.kept) == [True, False, False, True]  # sorted: l1 1e-4, 1e-3, 0.01; l2
    strongest = strongest_kept(table).set_index("regularizer")
    assert strongest.loc["l1", "strongest c within the margin"] == 1e-4
    assert strongest.loc["l2", "strongest c within the margin"] == 0.01
    assert strongest.loc["l1", "strengths tried"] == "0.0001, 0.001, 0.01"


def test_strongest_kept_says_none_when_every_strength_collapses():
    table = penalty_table(_sweep({("base", 0.0, 0): 0.7, ("elastic", 0.01, 0): 0.1}))
    row = strongest_kept(table).iloc[0]
    assert row["strongest c within the margin"] == "none"
    assert row["its drop (pt)"] == pytest.approx(60.0)


def test_sparsity_robustness_correlates_comparable_cells_only():
    """Sparser (lower density) models are more robust in this grid, so the correlation of
    density with PGD accuracy is -1; a collapsed model that would break the pattern is
    left out because it lost its clean accuracy."""
    results = [_result("vgg16", "base", clean=0.7, pgd=0.05, density=0.6)] + [
        _result("vgg16", "l1", clean=0.7, pgd=0.1 * k, density=0.5 - 0.05 * k, penalty=10.0**-k)
        for k in range(1, 6)
    ]
    results.append(_result("vgg16", "l2", clean=0.1, pgd=0.0, density=0.01))  # collapsed
    table = sparsity_robustness(penalty_table(results)).set_index(["sparsity", "robustness"])
    row = table.loc[("activation density", "pgd @ 2/255")]
    assert row.cells == 6
    assert row.spearman == pytest.approx(-1.0) and row.high == pytest.approx(-1.0)
    assert row["why none"] == ""
    assert table.loc[("hoyer", "pgd @ 2/255")].spearman == pytest.approx(1.0)


def test_sparsity_robustness_leaves_out_cells_where_deepfool_fooled_nothing():
    results = [
        _result("vgg16", "l1", clean=0.7, density=0.5 - 0.05 * k, penalty=10.0**-k)
        for k in range(1, 7)
    ]
    deepfool = "metrics.undefended.deepfool"
    results = [
        changed(r, deepfool, _attack_report(0.0, rho=0.01 * (k + 1))) for k, r in enumerate(results)
    ]
    results[0] = changed(results[0], deepfool, _attack_report(0.1, rho=None))
    results.append(_result("vgg16", "base", clean=0.7))
    table = sparsity_robustness(penalty_table(results)).set_index(["sparsity", "robustness"])
    row = table.loc[("activation density", "deepfool rho")]
    assert row.cells == 6 and row.spearman < 0  # the rho-less cell is out, not NaN
    assert table.loc[("activation density", "pgd @ 2/255")].cells == 7


def test_sparsity_robustness_needs_four_cells_for_an_interval():
    results = [_result("vgg16", "base"), _result("vgg16", "l1")]
    table = sparsity_robustness(penalty_table(results))
    assert (table.cells == 2).all() and table.spearman.isna().all()
    assert (table["why none"] == "fewer than 4 cells of comparable accuracy").all()


def test_sparsity_robustness_says_which_measure_was_constant():
    """Every model at 0 % under PGD at 2/255: no correlation,
    and the table says why instead of showing a bare NaN."""
    results = [
        _result("vgg16", "l1", clean=0.7, pgd=0.0, density=0.5 - 0.05 * k, penalty=10.0**-k)
        for k in range(1, 6)
    ]
    table = sparsity_robustness(penalty_table(results)).set_index(["sparsity", "robustness"])
    row = table.loc[("activation density", "pgd @ 2/255")]
    assert math.isnan(row.spearman)
    assert row["why none"] == "pgd @ 2/255 is the same in every cell (0)"


def test_summary_strength_table_reads_the_profiles_grid(smoke_env):
    from paperlib.report.summary import strength_table
    from paperlib.run.results import write_result

    for reg, c, acc in [("base", 0.0, 0.7), ("l1", 0.01, 0.1), ("l1", 1e-4, 0.68)]:
        write_result(_result("vgg16", reg, clean=acc, penalty=c))
    table = strength_table(["smoke", "cpu"])  # cpu has no results here: left out
    row = table.loc[("smoke", "vgg16", "l1")]
    assert row["strongest c within the margin"] == 1e-4
    assert list(table.index.get_level_values("profile").unique()) == ["smoke"]
    assert strength_table(["cpu"]).empty


# --- the two readings, and DeepFool's rho ---------------------------------------------


def test_table1_and_comparisons_read_transfer_or_white_box_as_asked():
    results = [
        _result("vgg16", "base", defended=0.1, transfer=0.5),
        _result("vgg16", "l2", defended=0.3, transfer=0.2),
    ]
    transfer = table1(results).set_index(["arch", "regularizer", "attack"])
    white_box = table1(results, "white-box").set_index(["arch", "regularizer", "attack"])
    assert transfer.loc[("vgg16", "l2", "pgd")].ours == pytest.approx(20.0)
    assert white_box.loc[("vgg16", "l2", "pgd")].ours == pytest.approx(30.0)


def test_deepfool_rho_table_shows_intervals_and_counts_and_says_when_nothing_was_fooled():
    collapsed = _result("vgg16", "l1", clean=0.1)
    collapsed = changed(collapsed, "metrics.undefended.deepfool", _attack_report(0.1, rho=None))
    table = deepfool_rho([_result("vgg16", "base"), collapsed]).set_index("regularizer")
    assert table.loc["base", "rho, undefended"] == "0.0200 [0.0150, 0.0250]"
    assert table.loc["base", "fooled / not"] == "150 / 20"
    assert table.loc["l1", "rho, undefended"] == "none fooled"
    assert table.loc["l1", "fooled / not"] == "0 / 20"


def test_table1_interval_carries_the_seed_to_seed_spread():
    """Two seeds at 10 % and 50 %: the interval of their mean must reach towards both,
    not shrink to the image noise of the averaged per-image values."""
    apart = [
        _result("vgg16", "l2", seed=0, defended=0.1),
        _result("vgg16", "l2", seed=1, defended=0.5),
    ]
    row = table1(apart).set_index(["arch", "regularizer", "attack"]).loc[("vgg16", "l2", "pgd")]
    assert row.ours == pytest.approx(30.0)
    assert row.low < 15.0 and row.high > 45.0


# --- the audit and the cross-attack matrix on the results pages ---------------------


def test_a_flagged_cell_is_marked_in_table1_and_the_penalty_table():
    results = [
        _result("vgg16", "base"),
        _result("vgg16", "l1", flagged=True),
        _result("vgg16", "l2"),
    ]
    shown = table1_display(table1(results))
    assert all(FLAG in v for v in shown.loc[("vgg16", "l1")])
    assert not any(FLAG in v for v in shown.loc[("vgg16", "l2")])
    sweep = penalty_table(results).set_index("regularizer")
    assert sweep.loc["l1", "flagged"] and not sweep.loc["l2", "flagged"]


def test_audit_table_names_the_failing_model_and_details_say_why():
    results = [_result("vgg16", "base"), _result("vgg16", "l1", flagged=True)]
    table = audit_table(results).set_index("cell")
    assert table.loc["vgg16-l1-c0.01-s0", "large_eps_breaks"] == "FAIL: undefended"
    assert table.loc["vgg16-base-s0", "large_eps_breaks"] == "pass"
    assert list(table.columns) == list(CHECKS)
    details = audit_details(results)
    assert details[["cell", "check"]].values.tolist() == [["vgg16-l1-c0.01-s0", "large_eps_breaks"]]


def test_cross_attack_table_averages_seeds_and_shows_both_readings():
    results = [
        _result("vgg16", "base", seed=0, defended=0.2, transfer=0.6),
        _result("vgg16", "base", seed=1, defended=0.4, transfer=0.8),
    ]
    table = cross_attack_table(results)
    assert table.shape == (3, 3)  # fine-tuned against each attack x each attack
    assert set(table.to_numpy().ravel()) == {"70.0 / 30.0"}


def test_cross_attack_table_keeps_the_papers_order_of_regularizers_and_attacks():
    results = [_result("vgg16", reg) for reg in reversed(REGULARIZERS)]
    table = cross_attack_table(results)
    assert list(table.index.get_level_values("regularizer").unique()) == list(REGULARIZERS)
    assert list(table.index.get_level_values("fine-tuned against").unique()) == list(ATTACKS)
    assert list(table.columns) == list(ATTACKS)


def test_penalty_figure_draws_when_deepfool_fooled_nothing_anywhere():
    from paperlib.report.plots import penalty_figure

    table = penalty_table([_result("vgg16", "base"), _result("vgg16", "l1", penalty=1e-4)])
    table["deepfool rho"] = np.nan  # collapsed models: no image fooled, no rho
    fig = penalty_figure(table)
    fig.canvas.draw()  # raised "Data cannot be log-scaled" before the limits were fixed
    assert fig.axes[2].get_xlim() == pytest.approx((5e-5, 2e-4))


def test_every_architecture_a_profile_may_run_has_a_plot_style():
    """ResNet-26's first committed study cells stopped the study's results page at its
    strength figure (KeyError: 'resnet26')."""
    from paperlib.core.registry import ARCHITECTURES
    from paperlib.report.plots import ARCH_STYLES

    assert set(ARCH_STYLES) == set(ARCHITECTURES)
    assert len(set(ARCH_STYLES.values())) == len(ARCH_STYLES)  # each one told apart
