"""Tests for experiment 2's tables and verdicts (paperlib.report.adversarial), on results
built by the same writer as notebooks/adversarial.py's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_result

from paperlib.core.audit import CHECKS
from paperlib.core.registry import ARCHITECTURES, ATTACKS, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import pack_bits
from paperlib.report.adversarial import (
    FLAG,
    accuracy_kept,
    adversarial_verdicts,
    audit_details,
    audit_table,
    clean_and_undefended,
    comparisons_table,
    convergence_table,
    cross_attack_table,
    deepfool_rho,
    epochs_to_converge,
    penalty_table,
    sparsity_robustness,
    strongest_kept,
    table1,
    table1_beside,
    table1_display,
    val_loss_rise,
)
from paperlib.report.paper import CLAIMS, TABLE1
from paperlib.report.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

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
    return {
        "accuracy": accuracy,
        "success_rate": 1 - accuracy,
        "linf": 0.3,
        "l2": 1.5,
        "rho": rho,
        "rho_ci": (None, None) if rho is None else (rho - 0.005, rho + 0.005),
        "fooled": 0 if rho is None else 150,
        "not_fooled": 20,
    }


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


def _grid(defended_by_reg: dict, seeds=(0,), histories=None) -> list[dict]:
    """Every architecture x regularizer; ``defended_by_reg`` as ``_result``'s ``defended``."""
    histories = histories or {}
    return [
        _result(arch, reg, seed, defended_by_reg[reg], histories.get(reg, STEADY))
        for arch in ARCHITECTURES
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
    i, j, k = ARCHITECTURES.index(arch), REGULARIZERS.index(reg), ATTACKS.index(attack)
    return (20 + 30 * i + 7 * j + 2 * k) / N_IMAGES


def test_table1_reports_each_cells_accuracy_in_percent_beside_the_papers():
    results = [
        _result(arch, reg, defended={a: _distinct_accuracy(arch, reg, a) for a in ATTACKS})
        for arch in ARCHITECTURES
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
    cpu = [r for r in _grid(dict.fromkeys(REGULARIZERS, 0.25)) if r["params"]["arch"] == "vgg16"]
    paper = [_result("vgg16", "l1", defended=0.5)]
    table = table1_beside({"cpu": cpu, "paper": paper})
    # A profile may be called "paper" too: its column must not replace the paper's.
    assert list(table.columns) == [
        "ours (cpu, transfer)",
        "ours (paper, transfer)",
        "paper (published)",
    ]
    assert table.index.names == ["arch", "regularizer", "attack"] and len(table) == 36
    row = table.loc[("vgg16", "l1", "fgsm")]
    assert row.iloc[0].startswith("25.0 [") and row.iloc[1].startswith("50.0 [")
    assert row.iloc[2] == f"{PAPER_TABLE1[('vgg16', 'l1')][1]:.1f}"
    # The paper grid has ResNet-50 (not run here); the cpu grid leaves it out.
    assert table.loc[("resnet50", "base", "pgd")].tolist()[:2] == ["not in the grid", "missing"]


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


def _verdict(results: list[dict], claim: str, **kwargs):
    by_claim = {v.claim: v for v in adversarial_verdicts(results, **kwargs)}
    assert list(by_claim) == [
        "regularization-helps",
        "elastic-most-consistent",
        "same-accuracy-slower",
        "regularized-converge-slower",
        "base-overfits",
    ]
    return by_claim[claim]


def test_regularization_helps_is_reproduced_when_all_27_comparisons_are_clear_gains():
    results = _grid({"base": 0.2, "l1": 0.6, "l2": 0.6, "elastic": 0.6})
    comparisons = comparisons_table(results)
    assert len(comparisons) == 27
    assert (comparisons["outcome"] == "gain").all()
    assert comparisons["diff"].tolist() == [40.0] * 27
    assert (comparisons["low"] > 0).all()
    verdict = _verdict(results, "regularization-helps")
    assert verdict.verdict == REPRODUCED
    assert "27 testable comparison(s)" in verdict.evidence
    assert "27 significant gain(s), 0 significant loss(es)" in verdict.evidence


def test_each_penalty_strength_is_judged_on_its_own_cells():
    """Collapsed models at the paper's c leave its claims not testable; the same grid's
    weaker strength, whose models learned and gained, still answers them."""
    base = [_result(a, "base", defended=0.2) for a in ARCHITECTURES]
    collapsed = [
        _result(a, r, defended=0.1, clean=0.1, collapsed=True)
        for a in ARCHITECTURES
        for r in REGULARIZERS[1:]
    ]
    learned = [
        _result(a, r, defended=0.6, penalty=1e-4) for a in ARCHITECTURES for r in REGULARIZERS[1:]
    ]
    results = base + collapsed + learned

    def verdict(**kwargs):
        found = adversarial_verdicts(results, **kwargs)
        return next(v for v in found if v.claim == "regularization-helps")

    assert verdict().verdict == NOT_TESTABLE
    weaker = verdict(penalty=1e-4)
    assert weaker.verdict == REPRODUCED
    assert "27 significant gain(s)" in weaker.evidence


def test_regularization_helps_is_not_reproduced_when_all_comparisons_are_clear_losses():
    results = _grid({"base": 0.6, "l1": 0.2, "l2": 0.2, "elastic": 0.2})
    assert (comparisons_table(results)["outcome"] == "loss").all()
    assert _verdict(results, "regularization-helps").verdict == NOT_REPRODUCED


def test_regularization_helps_is_inconclusive_with_some_gains_and_no_losses():
    results = _grid({"base": 0.2, "l1": 0.2, "l2": 0.2, "elastic": 0.6})  # 9 gains of 27
    outcomes = comparisons_table(results)["outcome"].value_counts().to_dict()
    assert outcomes == {"tie": 18, "gain": 9}
    assert _verdict(results, "regularization-helps").verdict == INCONCLUSIVE


def test_regularization_helps_is_inconclusive_when_every_model_is_identical():
    results = _grid(dict.fromkeys(REGULARIZERS, 0.4))
    assert (comparisons_table(results)["outcome"] == "tie").all()
    assert _verdict(results, "regularization-helps").verdict == INCONCLUSIVE


def test_no_comparison_without_a_base_model():
    results = [
        r for r in _grid(dict.fromkeys(REGULARIZERS, 0.4)) if r["params"]["regularizer"] != "base"
    ]
    assert comparisons_table(results).empty
    assert _verdict(results, "regularization-helps").verdict == INCONCLUSIVE
    assert _verdict(results, "elastic-most-consistent").verdict == INCONCLUSIVE


def test_elastic_most_consistent_is_reproduced_when_elastic_wins_most():
    l2_fgsm_only = {"deepfool": 0.2, "fgsm": 0.6, "pgd": 0.2}  # 3 gains; elastic has 9
    results = _grid({"base": 0.2, "l1": 0.2, "l2": l2_fgsm_only, "elastic": 0.6})
    verdict = _verdict(results, "elastic-most-consistent")
    assert verdict.evidence == "significant gains over base (Holm): l1 0, l2 3, elastic 9"
    assert verdict.verdict == REPRODUCED


def test_elastic_most_consistent_is_inconclusive_on_a_tie():
    results = _grid({"base": 0.2, "l1": 0.6, "l2": 0.2, "elastic": 0.6})
    verdict = _verdict(results, "elastic-most-consistent")
    assert verdict.evidence == "significant gains over base (Holm): l1 9, l2 0, elastic 9"
    assert verdict.verdict == INCONCLUSIVE


def test_elastic_most_consistent_is_not_reproduced_when_another_regularizer_wins_more():
    results = _grid({"base": 0.2, "l1": 0.6, "l2": 0.2, "elastic": 0.2})
    assert _verdict(results, "elastic-most-consistent").verdict == NOT_REPRODUCED


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


def test_convergence_verdict_follows_the_vgg_curves():
    slower = _grid(
        dict.fromkeys(REGULARIZERS, 0.4),
        histories={"base": FAST, "l1": SLOW, "l2": SLOW, "elastic": SLOW},
    )
    verdict = _verdict(slower, "regularized-converge-slower")
    assert verdict.verdict == REPRODUCED
    assert "base 2" in verdict.evidence and "elastic 4" in verdict.evidence
    faster = _grid(
        dict.fromkeys(REGULARIZERS, 0.4),
        histories={"base": SLOW, "l1": FAST, "l2": FAST, "elastic": FAST},
    )
    assert _verdict(faster, "regularized-converge-slower").verdict == NOT_REPRODUCED
    same = _grid(dict.fromkeys(REGULARIZERS, 0.4))
    assert _verdict(same, "regularized-converge-slower").verdict == INCONCLUSIVE


def test_same_accuracy_slower_is_judged_per_architecture_at_each_strength():
    slower = [
        _result(arch, reg, history=FAST if reg == "base" else SLOW, penalty=c)
        for arch in ARCHITECTURES
        for reg, c in [("base", 0.0), *((r, 1e-4) for r in REGULARIZERS[1:])]
    ]
    table = convergence_table(slower)
    assert len(table) == 9 and set(table.verdict) == {REPRODUCED}
    assert _verdict(slower, "same-accuracy-slower", penalty=1e-4).verdict == REPRODUCED
    # A model that collapses at one strength breaks "all models reach the same accuracy"
    # there, and only there.
    broken = [*slower, _result("vgg16", "l1", penalty=0.01, clean=0.1, collapsed=True)]
    table = convergence_table(broken).set_index(["arch", "regularizer", "penalty"])
    assert table.loc[("vgg16", "l1", 0.01), "verdict"] == NOT_REPRODUCED
    assert "collapsed: one class" in table.loc[("vgg16", "l1", 0.01), "why"]
    assert _verdict(broken, "same-accuracy-slower").verdict == NOT_REPRODUCED
    assert _verdict(broken, "same-accuracy-slower", penalty=1e-4).verdict == REPRODUCED


def test_curve_verdicts_are_inconclusive_without_the_vgg_cells():
    results = [r for r in _grid(dict.fromkeys(REGULARIZERS, 0.4)) if r["params"]["arch"] != "vgg16"]
    for claim in ("regularized-converge-slower", "base-overfits"):
        verdict = _verdict(results, claim)
        assert verdict.verdict == INCONCLUSIVE
        assert verdict.evidence == "VGG-16 cells missing"


def test_overfitting_verdict_is_inconclusive_with_one_seed_however_clear():
    histories = {"base": OVERFITS, "l1": FAST, "l2": FAST, "elastic": FAST}
    one_seed = _grid(dict.fromkeys(REGULARIZERS, 0.4), histories=histories)
    verdict = _verdict(one_seed, "base-overfits")
    assert verdict.verdict == INCONCLUSIVE
    assert "one seed" in verdict.evidence and "base 1.400" in verdict.evidence
    two_seeds = _grid(dict.fromkeys(REGULARIZERS, 0.4), seeds=(0, 1), histories=histories)
    assert _verdict(two_seeds, "base-overfits").verdict == REPRODUCED
    reversed_roles = {"base": FAST, "l1": OVERFITS, "l2": OVERFITS, "elastic": OVERFITS}
    two_seeds = _grid(dict.fromkeys(REGULARIZERS, 0.4), seeds=(0, 1), histories=reversed_roles)
    assert _verdict(two_seeds, "base-overfits").verdict == NOT_REPRODUCED


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
    (l1,) = [c for c in comparisons_table(results).to_dict("records") if c["attack"] == "pgd"][:1]
    assert l1["diff"] == pytest.approx(-30.0)


def _sweep(clean_by_cell: dict) -> list[dict]:
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
    row = table.loc[("activation density", "pgd @ 8/255")]
    assert row.cells == 6
    assert row.spearman == pytest.approx(-1.0) and row.high == pytest.approx(-1.0)
    assert row["why none"] == ""
    assert table.loc[("hoyer", "pgd @ 8/255")].spearman == pytest.approx(1.0)


def test_sparsity_robustness_leaves_out_cells_where_deepfool_fooled_nothing():
    results = [
        _result("vgg16", "l1", clean=0.7, density=0.5 - 0.05 * k, penalty=10.0**-k)
        for k in range(1, 7)
    ]
    for k, r in enumerate(results):
        r["metrics"]["undefended"]["deepfool"] = _attack_report(0.0, rho=0.01 * (k + 1))
    results[0]["metrics"]["undefended"]["deepfool"] = _attack_report(0.1, rho=None)
    results.append(_result("vgg16", "base", clean=0.7))
    table = sparsity_robustness(penalty_table(results)).set_index(["sparsity", "robustness"])
    row = table.loc[("activation density", "deepfool rho")]
    assert row.cells == 6 and row.spearman < 0  # the rho-less cell is out, not NaN
    assert table.loc[("activation density", "pgd @ 8/255")].cells == 7


def test_sparsity_robustness_needs_four_cells_for_an_interval():
    results = [_result("vgg16", "base"), _result("vgg16", "l1")]
    table = sparsity_robustness(penalty_table(results))
    assert (table.cells == 2).all() and table.spearman.isna().all()
    assert (table["why none"] == "fewer than 4 cells of comparable accuracy").all()


def test_sparsity_robustness_says_which_measure_was_constant():
    """Every model at 0 % under PGD at 8/255, as the cpu profile's are: no correlation,
    and the table says why instead of showing a bare NaN."""
    results = [
        _result("vgg16", "l1", clean=0.7, pgd=0.0, density=0.5 - 0.05 * k, penalty=10.0**-k)
        for k in range(1, 6)
    ]
    table = sparsity_robustness(penalty_table(results)).set_index(["sparsity", "robustness"])
    row = table.loc[("activation density", "pgd @ 8/255")]
    assert math.isnan(row.spearman)
    assert row["why none"] == "pgd @ 8/255 is the same in every cell (0)"


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


def test_summary_judges_every_claim_at_every_strength_the_profile_ran(smoke_env):
    from paperlib.report.summary import verdicts_by_strength
    from paperlib.run.results import write_result

    write_result(_result("vgg16", "base", defended=0.2))
    for reg in REGULARIZERS[1:]:
        write_result(_result("vgg16", reg, defended=0.1, clean=0.1, collapsed=True))
        write_result(_result("vgg16", reg, defended=0.6, penalty=1e-4))
    table = verdicts_by_strength(["smoke", "cpu"]).set_index("claim")  # cpu: no results
    assert list(table.columns) == ["smoke, c = 0.01 (the paper's)", "smoke, c = 0.0001"]
    helps = table.loc[CLAIMS["regularization-helps"][1]]
    assert helps.tolist() == [NOT_TESTABLE, REPRODUCED]


def test_summary_claims_say_no_results_where_a_profile_has_none_and_list_the_evidence(
    smoke_env,
):
    from paperlib.report.summary import NO_RESULTS, claims_evidence, claims_table, judge_profiles
    from paperlib.run.results import write_result

    write_result(_result("vgg16", "base", defended=0.2))
    for reg in REGULARIZERS[1:]:
        write_result(_result("vgg16", reg, defended=0.1, clean=0.1, collapsed=True))
    judged = judge_profiles(["smoke", "cpu"])  # cpu: no results
    table = claims_table(judged).set_index("claim")
    helps = table.loc[CLAIMS["regularization-helps"][1]]
    assert helps["verdict (smoke)"] == NOT_TESTABLE
    assert helps["verdict (cpu)"] == NO_RESULTS
    assert not table.isna().any().any()
    assert "evidence (smoke)" not in table.columns  # the evidence has its own table

    evidence = claims_evidence(judged).set_index(["claim", "profile"])
    assert set(evidence.index.get_level_values("profile")) == {"smoke"}
    row = evidence.loc[(CLAIMS["regularization-helps"][1], "smoke")]
    assert row.verdict == NOT_TESTABLE and "collapsed" in row.evidence
    assert len(evidence) == len(table)  # one row per claim judged on smoke


def test_results_pages_judge_the_claims_at_every_strength_the_paper_s_first():
    from paperlib.report.common import verdicts_at_each_strength

    results = [_result("vgg16", "base", defended=0.2)]
    for reg in REGULARIZERS[1:]:
        results.append(_result("vgg16", reg, defended=0.1, clean=0.1, collapsed=True))
        results.append(_result("vgg16", reg, defended=0.6, penalty=1e-4))
    table = verdicts_at_each_strength(adversarial_verdicts, results, EligibilityConfig())
    helps = table[table.claim == CLAIMS["regularization-helps"][1]]
    assert helps.strength.tolist() == ["c = 0.01 (the paper's)", "c = 0.0001"]
    assert helps.verdict.tolist() == [NOT_TESTABLE, REPRODUCED]
    # Only base models: the claims are still listed, at the paper's strength.
    alone = verdicts_at_each_strength(adversarial_verdicts, results[:1], EligibilityConfig())
    assert set(alone.strength) == {"c = 0.01 (the paper's)"}


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
    by_reading = {
        reading: comparisons_table(results, reading).set_index(["attack", "regularizer"])
        for reading in ("transfer", "white-box")
    }
    assert by_reading["transfer"].loc[("fgsm", "l2"), "outcome"] == "loss"
    assert by_reading["white-box"].loc[("fgsm", "l2"), "outcome"] == "gain"
    # The verdict uses the paper's reading, transfer: a significant loss everywhere.
    assert _verdict_of(results, "regularization-helps").verdict == NOT_REPRODUCED


def _verdict_of(results, claim):
    return next(v for v in adversarial_verdicts(results) if v.claim == claim)


def test_deepfool_rho_table_shows_intervals_and_counts_and_says_when_nothing_was_fooled():
    collapsed = _result("vgg16", "l1", clean=0.1)
    collapsed["metrics"]["undefended"]["deepfool"] = _attack_report(0.1, rho=None)
    table = deepfool_rho([_result("vgg16", "base"), collapsed]).set_index("regularizer")
    assert table.loc["base", "rho, undefended"] == "0.0200 [0.0150, 0.0250]"
    assert table.loc["base", "fooled / not"] == "150 / 20"
    assert table.loc["l1", "rho, undefended"] == "none fooled"
    assert table.loc["l1", "fooled / not"] == "0 / 20"


def test_a_collapsed_model_never_decides_whether_regularization_helps():
    """A constant predictor keeps its class's 10 % under every attack, while a working
    base model falls to 0: that must not count as a robustness gain."""
    results = [_result("vgg16", "base", defended=0.0, clean=0.66)] + [
        _result("vgg16", reg, defended=0.1, clean=0.1) for reg in REGULARIZERS[1:]
    ]
    table = comparisons_table(results)
    assert set(table.outcome) == {NOT_TESTABLE}
    assert table["diff"].gt(0).all()  # the interval alone would have called it a win
    helps = _verdict_of(results, "regularization-helps")
    assert helps.verdict == NOT_TESTABLE and "27 not testable" not in helps.evidence
    assert "9 not testable" in helps.evidence
    assert _verdict_of(results, "elastic-most-consistent").verdict == NOT_TESTABLE
    assert _verdict_of(results, "regularized-converge-slower").verdict == NOT_TESTABLE


def test_one_collapsed_regularizer_leaves_the_others_to_decide():
    results = [_result("vgg16", "base", defended=0.0, clean=0.66)]
    results += [_result("vgg16", reg, defended=0.3, clean=0.65) for reg in ("l1", "l2")]
    results.append(_result("vgg16", "elastic", defended=0.1, clean=0.1))
    helps = _verdict_of(results, "regularization-helps")
    assert helps.verdict == REPRODUCED and "6 testable" in helps.evidence
    # Elastic net cannot be judged the most consistent when it is the broken one.
    assert _verdict_of(results, "elastic-most-consistent").verdict == NOT_TESTABLE


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


def test_a_flagged_cell_is_marked_in_table1_its_comparisons_and_the_penalty_table():
    results = [
        _result("vgg16", "base"),
        _result("vgg16", "l1", flagged=True),
        _result("vgg16", "l2"),
    ]
    shown = table1_display(table1(results))
    assert all(FLAG in v for v in shown.loc[("vgg16", "l1")])
    assert not any(FLAG in v for v in shown.loc[("vgg16", "l2")])
    marks = comparisons_table(results).set_index("regularizer")["audit"]
    assert set(marks["l1"]) == {FLAG} and set(marks["l2"]) == {"pass"}
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


def test_a_collapsed_model_decides_no_claim_even_when_its_accuracy_is_kept():
    """One class for every image, yet within 5 points of base's clean accuracy (a skewed
    test set would allow it): the entropy floor still takes it out, and it cannot make
    regularization "help" or "hurt"."""
    results = [_result(arch, "base", clean=0.3, defended=0.0) for arch in ARCHITECTURES]
    results += [
        _result(arch, reg, clean=0.28, defended=0.1, collapsed=True)
        for arch in ARCHITECTURES
        for reg in REGULARIZERS[1:]
    ]
    table = comparisons_table(results)
    assert set(table.outcome) == {NOT_TESTABLE}
    assert table.untestable.str.startswith("collapsed: one class predicted for 100 %").all()
    for claim in ("regularization-helps", "elastic-most-consistent"):
        assert _verdict_of(results, claim).verdict == NOT_TESTABLE


def test_a_collapsed_base_model_makes_its_comparisons_untestable():
    results = [_result("vgg16", "base", collapsed=True, defended=0.0)]
    results += [_result("vgg16", reg, defended=0.5) for reg in REGULARIZERS[1:]]
    table = comparisons_table(results)
    assert set(table.outcome) == {NOT_TESTABLE}
    assert table.untestable.str.startswith("base collapsed").all()


def test_the_papers_own_table1_goes_through_the_same_rule_as_unpaired_counts():
    from paperlib.report.adversarial import paper_comparisons, paper_verdicts

    comparisons = paper_comparisons()
    assert len(comparisons) == 27
    resnet_elastic_pgd = next(
        c
        for c in comparisons
        if (c["arch"], c["regularizer"], c["attack"]) == ("resnet50", "elastic", "pgd")
    )
    assert resnet_elastic_pgd["diff"] == pytest.approx(38.2 - 18.0)  # points
    assert resnet_elastic_pgd["outcome"] == "gain"
    vgg_l1_deepfool = next(
        c
        for c in comparisons
        if (c["arch"], c["regularizer"], c["attack"]) == ("vgg16", "l1", "deepfool")
    )
    assert vgg_l1_deepfool["outcome"] == "tie"  # 10.8 % against 8.4 % of 500: noise
    helps = paper_verdicts()[0]
    assert helps.claim == "regularization-helps"
    assert "the paper's counts of 500" in helps.evidence
