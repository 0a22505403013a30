"""The gradient-masking audit: the sanity checks of Carlini et al. 2019, "On Evaluating
Adversarial Robustness", on every model an experiment-2 cell attacks.

A model whose gradients are useless (a rounding step, saturated logits) looks robust
to gradient-based attacks without being robust. Such a model gives itself away: more
budget does not help the attacker, one step does as well as many, an unbounded attack
fails, a gradient-free attack succeeds where the gradient-based ones failed, or an
attack raises accuracy. Each check here takes per-image outcomes (True: still
correctly classified) on the same images and returns a record
``{"passed": True | False | None, "detail": str}``; None means the check does not
apply (for example to a collapsed model, which no attack can move).

"Within noise" is a one-sided exact test on the images where two outcomes differ
(McNemar's, as a binomial test), at level ``alpha`` split evenly (Bonferroni) over the
comparisons of one check.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from paperlib.core.records import AuditCheck, AutoAttackReport
from paperlib.core.settings import AuditConfig
from paperlib.core.stats import mcnemar_p

CHECKS = {
    "monotone_in_eps": "accuracy under PGD does not rise with ε",
    "iterative_beats_single_step": "an iterative attack is at least as strong as one step",
    "large_eps_breaks": "an unbounded attack, or ε = 0.3, takes accuracy to about 0",
    "gradient_free_not_stronger": "Square finds little that the gradient attacks missed",
    "robust_below_clean": "no attack leaves accuracy above clean",
}

Bits = np.ndarray | torch.Tensor


def higher_p(higher: Bits, lower: Bits) -> float:
    """One-sided exact p-value that accuracy under ``higher`` exceeds that under
    ``lower``, the two measured on the same images."""
    return mcnemar_p(_bool(higher), _bool(lower), alternative="greater")


def _bool(bits: Bits) -> np.ndarray:
    return np.asarray(bits.cpu() if isinstance(bits, torch.Tensor) else bits).astype(bool)


def _record(passed: bool | None, detail: str) -> AuditCheck:
    return AuditCheck(passed=passed, detail=detail)


def _none_higher(pairs: list[tuple[str, Bits, Bits]], alpha: float, what: str) -> AuditCheck:
    """Fails when, for any pair ``(name, higher, lower)``, accuracy under ``higher`` is
    significantly above that under ``lower`` (Bonferroni over the pairs)."""
    if not pairs:
        return _record(None, "nothing to compare")
    level = alpha / len(pairs)
    failed = [
        f"{name} ({100 * _bool(h).mean():.1f} % vs {100 * _bool(lo).mean():.1f} %)"
        for name, h, lo in pairs
        if higher_p(h, lo) < level
    ]
    if failed:
        return _record(False, f"{what}: " + "; ".join(failed))
    return _record(True, f"{len(pairs)} comparison(s), none significant at {level:.3g}")


def monotone_in_eps(pgd_by_eps: Mapping[float, Bits], alpha: float) -> AuditCheck:
    """Accuracy under PGD at each ε is not significantly above that at the next smaller ε."""
    radii = sorted(pgd_by_eps)
    pairs = [
        (f"{large:.4g} over {small:.4g}", pgd_by_eps[large], pgd_by_eps[small])
        for small, large in zip(radii, radii[1:], strict=False)
    ]
    return _none_higher(pairs, alpha, "accuracy rose with ε")


def iterative_beats_single_step(pairs: Mapping[str, tuple[Bits, Bits]], alpha: float) -> AuditCheck:
    """``pairs``: name -> (iterative, single step) outcomes at the same ε. Fails when the
    iterative attack leaves significantly more images correct than the single step."""
    flat = [(name, it, one) for name, (it, one) in pairs.items()]
    return _none_higher(flat, alpha, "one step beat the iterative attack")


def large_eps_breaks(unbounded: Mapping[str, Bits], near_zero: float, collapsed: str) -> AuditCheck:
    """Every attack in ``unbounded`` (DeepFool, PGD at ε = 0.3) leaves at most
    ``near_zero`` accuracy. ``collapsed`` names why the check does not apply, or is ""."""
    if collapsed:
        return _record(None, f"not applicable: {collapsed}")
    failed = [
        f"{name} leaves {100 * _bool(bits).mean():.1f} %"
        for name, bits in unbounded.items()
        if _bool(bits).mean() > near_zero
    ]
    if failed:
        return _record(False, "; ".join(failed) + f" (more than {100 * near_zero:g} %)")
    return _record(True, f"{', '.join(unbounded)} leave at most {100 * near_zero:g} %")


def gradient_free_not_stronger(
    autoattack: AutoAttackReport, images: int, margin: float
) -> AuditCheck:
    """From an AutoAttack report: the share of images that Square fooled after the
    gradient-based components had failed on them is at most ``margin``."""
    if "square" not in autoattack.components:
        return _record(None, "not run: this profile's AutoAttack has no Square")
    share = autoattack.fooled_by["square"] / images
    verdict = share <= margin
    return _record(
        verdict,
        f"Square fooled {autoattack.fooled_by['square']} of {images} images "
        f"({100 * share:.1f} %) that the gradient attacks left"
        + ("" if verdict else f", more than {100 * margin:g} %"),
    )


def robust_below_clean(clean: Bits, attacked: Mapping[str, Bits], alpha: float) -> AuditCheck:
    """No attack leaves significantly more images correct than the clean model gets."""
    pairs = [(name, bits, clean) for name, bits in attacked.items()]
    return _none_higher(pairs, alpha, "accuracy above clean")


def audit_undefended(
    cfg: AuditConfig,
    *,
    collapsed: str,
    clean: Bits,
    fgsm_by_eps: Mapping[float, Bits],
    pgd_by_eps: Mapping[float, Bits],
    paper_attacks: Mapping[str, Bits],
    autoattack_report: AutoAttackReport,
    autoattack: Bits,
) -> dict[str, AuditCheck]:
    """All five checks on the clean-trained model: the ε sweep (untargeted PGD and
    FGSM), the paper's three attacks at ART's settings, and AutoAttack. ``collapsed``
    says why the model has collapsed (``eligibility.collapse_reason``), or is ""."""
    largest = max(pgd_by_eps)
    step_pairs = {f"PGD vs FGSM at {e:.4g}": (pgd_by_eps[e], fgsm_by_eps[e]) for e in pgd_by_eps}
    step_pairs["targeted PGD vs FGSM (paper settings)"] = (
        paper_attacks["pgd"],
        paper_attacks["fgsm"],
    )
    attacked = {f"{k} (paper settings)": v for k, v in paper_attacks.items()}
    attacked |= {f"PGD at {e:.4g}": v for e, v in pgd_by_eps.items()}
    attacked |= {f"FGSM at {e:.4g}": v for e, v in fgsm_by_eps.items()}
    attacked["AutoAttack"] = autoattack
    return {
        "monotone_in_eps": monotone_in_eps(pgd_by_eps, cfg.alpha),
        "iterative_beats_single_step": iterative_beats_single_step(step_pairs, cfg.alpha),
        "large_eps_breaks": large_eps_breaks(
            {"DeepFool": paper_attacks["deepfool"], f"PGD at {largest:.4g}": pgd_by_eps[largest]},
            cfg.near_zero,
            collapsed,
        ),
        "gradient_free_not_stronger": gradient_free_not_stronger(
            autoattack_report, len(_bool(clean)), cfg.gradient_free_margin
        ),
        "robust_below_clean": robust_below_clean(clean, attacked, cfg.alpha),
    }


def audit_finetuned(
    cfg: AuditConfig, *, collapsed: str, clean: Bits, attacks: Mapping[str, Bits]
) -> dict[str, AuditCheck]:
    """The checks that the cross-attack matrix allows on an adversarially fine-tuned
    model: the paper's three attacks at ART's settings, white-box."""
    not_run = _record(None, "not run on fine-tuned models (no ε sweep, no Square)")
    return {
        "monotone_in_eps": not_run,
        "iterative_beats_single_step": iterative_beats_single_step(
            {"targeted PGD vs FGSM (paper settings)": (attacks["pgd"], attacks["fgsm"])},
            cfg.alpha,
        ),
        "large_eps_breaks": large_eps_breaks(
            {"DeepFool": attacks["deepfool"], "targeted PGD (paper settings)": attacks["pgd"]},
            cfg.near_zero,
            collapsed,
        ),
        "gradient_free_not_stronger": not_run,
        "robust_below_clean": robust_below_clean(clean, attacks, cfg.alpha),
    }


def failures(audit: Mapping[str, Mapping[str, AuditCheck]]) -> list[str]:
    """``model: check`` for every failed check of a cell's audit (model -> checks)."""
    return [
        f"{model}: {name}"
        for model, checks in audit.items()
        for name, record in checks.items()
        if record.passed is False
    ]
