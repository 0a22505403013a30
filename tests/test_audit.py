"""Tests for paperlib.core.audit: each check fires on outcomes that show gradient masking,
and the whole audit passes a trained model and flags the same model behind a rounding
step whose gradient is zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.core.attacks import run_attack, run_autoattack
from paperlib.core.audit import (
    CHECKS,
    audit_finetuned,
    audit_undefended,
    failures,
    gradient_free_not_stronger,
    higher_p,
    iterative_beats_single_step,
    large_eps_breaks,
    monotone_in_eps,
    robust_below_clean,
)
from paperlib.core.metrics import correct
from paperlib.core.records import AuditCheck, AutoAttackReport
from paperlib.core.registry import ATTACKS as PAPER_ATTACKS
from paperlib.core.settings import AttackConfig, AuditConfig

CPU = torch.device("cpu")
CFG = AuditConfig()
ONES, ZEROS = np.ones(100, bool), np.zeros(100, bool)


def autoattack_report(components: list[str], fooled_by: dict[str, int]) -> AutoAttackReport:
    """An AutoAttack report with only its components' counts set."""
    return AutoAttackReport(
        accuracy=0.0, success_rate=1.0, linf=0.03, l2=1.0, rho=0.05, rho_ci=(0.04, 0.06),
        fooled=sum(fooled_by.values()), not_fooled=0, components=components, fooled_by=fooled_by,
    )  # fmt: skip


def test_higher_p_is_an_exact_one_sided_test_on_the_discordant_images():
    assert higher_p(ONES, ONES) == 1.0
    assert higher_p(ZEROS, ONES) == 1.0  # lower, not higher
    ten_up = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    assert higher_p(ten_up, ZEROS) == pytest.approx(0.5**10)
    # 6 up and 4 down is no evidence either way.
    a = np.r_[np.ones(6, bool), np.zeros(4, bool)]
    assert higher_p(a, ~a) > 0.3


def test_accuracy_that_rises_with_eps_fails_the_monotonicity_check():
    assert monotone_in_eps({0.01: ONES, 0.03: ZEROS, 0.3: ZEROS}, 0.05).passed is True
    record = monotone_in_eps({0.01: ZEROS, 0.03: ONES}, 0.05)
    assert record.passed is False and "rose with" in record.detail
    assert monotone_in_eps({0.03: ONES}, 0.05).passed is None  # one radius: nothing to do


def test_a_single_step_beating_the_iterative_attack_fails():
    assert iterative_beats_single_step({"at 8/255": (ZEROS, ONES)}, 0.05).passed is True
    assert iterative_beats_single_step({"at 8/255": (ONES, ZEROS)}, 0.05).passed is False


def test_an_unbounded_attack_that_leaves_accuracy_fails_unless_the_model_collapsed():
    assert large_eps_breaks({"DeepFool": ZEROS}, 0.05, "").passed is True
    leaves_ten = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    record = large_eps_breaks({"DeepFool": leaves_ten}, 0.05, "")
    assert record.passed is False and "10.0 %" in record.detail
    collapsed = large_eps_breaks({"DeepFool": ONES}, 0.05, "collapsed: one class")
    assert collapsed.passed is None and "collapsed" in collapsed.detail


def test_square_finding_much_beyond_the_gradient_attacks_fails():
    report = autoattack_report(["apgd-ce", "square"], {"apgd-ce": 50, "square": 3})
    assert gradient_free_not_stronger(report, 100, 0.05).passed is True
    report.fooled_by["square"] = 30
    assert gradient_free_not_stronger(report, 100, 0.05).passed is False
    without = autoattack_report(["apgd-ce"], {"apgd-ce": 50})
    assert gradient_free_not_stronger(without, 100, 0.05).passed is None


def test_an_attack_that_raises_accuracy_above_clean_fails():
    half = np.arange(100) < 50
    assert robust_below_clean(half, {"pgd": ZEROS}, 0.05).passed is True
    assert robust_below_clean(half, {"pgd": ONES}, 0.05).passed is False


def test_failures_lists_model_and_check_for_failed_checks_only():
    audit = {
        "undefended": {"a": AuditCheck(True, ""), "b": AuditCheck(None, "not run")},
        "fine-tuned against fgsm": {"a": AuditCheck(False, "")},
    }
    assert failures(audit) == ["fine-tuned against fgsm: a"]


# --- the whole audit on real attacks ------------------------------------------------

ATTACKS = AttackConfig(
    pgd_steps=10,
    deepfool_steps=50,
    standard_steps=10,
    autoattack=["apgd-ce", "apgd-t", "square"],
    autoattack_steps=10,
    square_queries=300,
    batch_size=100,
)
RADII = (2 / 255, 8 / 255, 0.3)


class Rounded(nn.Module):
    """A model whose input is rounded to 8 bits first: torch.round has a zero gradient,
    so every gradient-based attack sees a flat loss (gradient masking by construction)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 255) / 255)


def _audit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """The audit of the undefended model, as the adversarial notebook runs it."""
    torch.manual_seed(0)
    run = lambda name, eps=None: run_attack(name, model, ATTACKS, images, labels, CPU, eps)[1]  # noqa: E731
    report, bits, _ = run_autoattack(model, ATTACKS, images, labels, CPU, eps=8 / 255)
    return audit_undefended(
        CFG,
        collapsed="",
        clean=correct(model, images, labels),
        fgsm_by_eps={e: run("fgsm", e) for e in RADII},
        pgd_by_eps={e: run("pgd_standard", e) for e in RADII},
        paper_attacks={name: run(name) for name in PAPER_ATTACKS},
        autoattack_report=report,
        autoattack=bits,
    )


def test_a_trained_model_passes_every_check(cnn, attacked):
    audit = _audit(cnn, *attacked)
    assert set(audit) == set(CHECKS)
    assert failures({"undefended": audit}) == [], audit
    assert audit["large_eps_breaks"].passed is True


def test_a_model_with_a_zero_gradient_rounding_step_is_flagged(cnn, attacked):
    images, labels = attacked
    masked = Rounded(cnn).eval()
    assert correct(masked, images, labels).float().mean() >= 0.9  # it still classifies
    audit = _audit(masked, images, labels)
    failed = failures({"undefended": audit})
    assert "undefended: large_eps_breaks" in failed  # DeepFool cannot move it
    assert "undefended: gradient_free_not_stronger" in failed  # Square can


def test_the_fine_tuned_audit_flags_a_masked_model_and_skips_what_it_cannot_check(cnn, attacked):
    images, labels = attacked
    for model, flagged in ((cnn, False), (Rounded(cnn).eval(), True)):
        attacks = {
            name: run_attack(name, model, ATTACKS, images, labels, CPU)[1] for name in PAPER_ATTACKS
        }
        audit = audit_finetuned(
            CFG,
            collapsed="",
            clean=correct(model, images, labels),
            attacks=attacks,
        )
        assert audit["monotone_in_eps"].passed is None
        assert (audit["large_eps_breaks"].passed is False) == flagged


def test_autoattack_credits_each_fooled_image_to_one_component_inside_the_ball(cnn, attacked):
    images, labels = attacked
    report, bits, adversarial = run_autoattack(cnn, ATTACKS, images, labels, CPU, eps=8 / 255)
    clean = correct(cnn, images, labels)
    assert not (bits & ~clean).any()  # only correct images are attacked
    assert sum(report.fooled_by.values()) == int(clean.sum() - bits.sum())
    assert report.components == ["apgd-ce", "apgd-t", "square"]
    assert (adversarial - images).abs().max() <= 8 / 255 + 1e-6
    assert torch.equal(correct(cnn, adversarial, labels), bits)
