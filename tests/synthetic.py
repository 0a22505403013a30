"""Synthetic result sets with a known truth, built through the one results writer
(``results.cell_result``, via ``helpers.make_result``), for the ground-truth tests of the
verdict engine.

Each image has a difficulty and each seed a skill, shared by every arm (the pairing);
a regularized arm adds a known effect to the claim's endpoint. Outcomes of one model on
one image come from one uniform draw (the placebo's from mostly the same), so that the
transfer and placebo readings of the same model are correlated, as in a run.

The results carry the smoke profile's name (the writer's default): no profile's
committed primary strengths (params/analysis.yaml) apply to them, so the rule picks
from the synthetic cells themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from helpers import make_result

from paperlib.core.registry import ATTACKS, REGULARIZERS
from paperlib.core.stats import pack_bits
from paperlib.run.results import Result

ARCHS = ("vgg16", "resnet26")
STRENGTH = 1e-4
EPS = [2 / 255, 4 / 255, 8 / 255]


@dataclass(frozen=True)
class Design:
    seeds: int = 8
    images: int = 1000
    seed_sd: float = 0.02  # of an arm's accuracy between seeds
    collapsed: bool = False  # the regularized models predict one class


def _bits(p: np.ndarray, u: np.ndarray) -> str:
    return pack_bits(u < np.clip(p, 0, 1))


def adversarial_results(effect: dict[str, float], design: Design, rng) -> list[Result]:
    """Experiment 2's cells: base and every regularizer at one strength, ``design.seeds``
    paired seeds; the regularized arm's adversarial transfer reading beats its placebo by
    ``effect[arch]`` more than base's does (the claim's primary endpoint)."""
    out = []
    difficulty = rng.uniform(0.1, 0.6, design.images)
    for arch in ARCHS:
        for seed in range(design.seeds):
            skill = rng.normal(0, design.seed_sd)
            for reg in REGULARIZERS:
                gain = 0.0 if reg == "base" else effect[arch] + rng.normal(0, design.seed_sd / 2)
                out.append(
                    _adversarial_cell(arch, reg, seed, difficulty + skill, gain, design, rng)
                )
    return out


def _adversarial_cell(arch, reg, seed, p, gain, design, rng) -> dict:
    collapsed = design.collapsed and reg != "base"
    n = len(p)
    u = rng.random((4, n))
    # The placebo's draw agrees with the transfer reading's on most images, not all: two
    # fine-tunes of one model flip some images differently.
    u_placebo = np.where(rng.random(n) < 0.8, u[1], rng.random(n))
    clean = np.full(n, 0.1) if collapsed else p + 0.3
    correct = {
        "clean": _bits(clean, u[0]),
        "transfer": {a: _bits(p + 0.1 + gain, u[1]) for a in ATTACKS},
        "placebo": {a: _bits(p + 0.1, u_placebo) for a in ATTACKS},
        "defended": {a: _bits(p + gain, u[2]) for a in ATTACKS},
        "defended_clean": {a: _bits(clean, u[0]) for a in ATTACKS},
        "undefended": {a: _bits(p - 0.1, u[3]) for a in ATTACKS},
        "autoattack": _bits(p - 0.3, u[3]),
        "endpoints": {
            "pgd": [_bits(p - 0.1 * i, u[3]) for i in range(len(EPS))],
            "autoattack": [_bits(p - 0.1 * i - 0.05, u[3]) for i in range(len(EPS))],
        },
    }
    accuracy = float(np.mean(np.clip(clean, 0, 1)))
    counts = [n] + [0] * 9 if collapsed else [n // 10] * 10
    history = [
        {"epoch": e, "train_loss": 1.0, "train_acc": 0.2 * e, "val_loss": 1.0, "val_acc": accuracy}
        for e in (1, 2, 3, 4)
    ]
    rho = np.exp(rng.normal(-4, 0.5, n) + gain)
    return make_result(
        "adversarial",
        {
            "arch": arch,
            "regularizer": reg,
            "penalty": 0.0 if reg == "base" else STRENGTH,
            "seed": seed,
        },
        {
            "clean": {"accuracy": accuracy, "predicted_counts": counts, "val_accuracy": accuracy},
            "endpoints": {"eps": EPS, "pgd": [0.3, 0.2, 0.1], "autoattack": [0.3, 0.2, 0.1]},
            "audit": {"checks": {}, "failures": []},
        },
        correct=correct,
        per_image={"deepfool_rho": {"undefended": rho.tolist(), "defended": rho.tolist()}},
        history=history,
    )


def attribution_results(effect: float, design: Design, rng) -> list[Result]:
    """Experiment 3's cells: every regularizer's SSDs are ``effect`` (relative to base's
    mean) below base's, image by image, on both methods."""
    out = []
    base_ssd = rng.gamma(2.0, 10.0, design.images)
    for arch in ARCHS:
        for seed in range(design.seeds):
            skill = rng.normal(1.0, design.seed_sd * 5)
            for reg in REGULARIZERS:
                shrink = 1.0 if reg == "base" else 1.0 - effect
                noise = rng.normal(0, 2.0, (2, design.images))
                ssd = [np.maximum(base_ssd * skill * shrink + noise[i], 0.0) for i in range(2)]
                collapsed = design.collapsed and reg != "base"
                out.append(
                    make_result(
                        "attribution",
                        {
                            "arch": arch,
                            "regularizer": reg,
                            "penalty": 0.0 if reg == "base" else STRENGTH,
                            "seed": seed,
                        },
                        {
                            "clean_accuracy": 0.1 if collapsed else 0.65,
                            "predicted_counts": [100] + [0] * 9 if collapsed else [10] * 10,
                        },
                        per_image={
                            "occlusion_ssd": ssd[0].round(4).tolist(),
                            "gradcam_ssd": ssd[1].round(4).tolist(),
                        },
                    )
                )
    return out
