"""Ground truth for the verdict engine: synthetic result sets with a known effect, built
through the one results writer at the study's sizes, must earn the label the truth
deserves, and a true null must read "reproduced" no more often than the nominal level."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from synthetic import ARCHS, STRENGTH, Design, adversarial_results, attribution_results

from paperlib.report.claims_robustness import robustness_verdicts
from paperlib.report.claims_stability import stability_verdicts
from paperlib.report.judge import (
    HELPS_LESS,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    UNDERPOWERED,
)
from paperlib.run.analysis import load_analysis_plan

PLAN = load_analysis_plan()
PRIMARY = {(arch, reg): STRENGTH for arch in ARCHS for reg in ("l1", "l2", "elastic")}
STUDY = Design(seeds=8, images=1000)


def _helps(effect: dict[str, float], design: Design, seed: int = 0) -> str:
    results = adversarial_results(effect, design, np.random.default_rng(seed))
    verdicts = robustness_verdicts(results, plan=PLAN)
    (helps,) = [v for v in verdicts if v.claim == "regularization-helps" and v.role == "primary"]
    return helps.verdict


# The margins of regularization-helps: 3.0 points for VGG-16, 10.4 for ResNet-26.
@pytest.mark.parametrize(
    ("effect", "design", "expected"),
    [
        ({"vgg16": 0.10, "resnet26": 0.20}, STUDY, {REPRODUCED}),  # beyond the margins
        ({"vgg16": 0.0, "resnet26": 0.0}, STUDY, {NOT_REPRODUCED}),  # a true null, decisively
        ({"vgg16": -0.08, "resnet26": -0.08}, STUDY, {NOT_REPRODUCED}),  # the other way
        ({"vgg16": 0.015, "resnet26": 0.05}, Design(10, 2000, seed_sd=0.01), {HELPS_LESS}),
        ({"vgg16": 0.0, "resnet26": 0.0}, Design(seeds=1, images=20), {UNDERPOWERED}),
        ({"vgg16": 0.10, "resnet26": 0.20}, Design(collapsed=True), {NOT_TESTABLE}),
    ],
    ids=["large effect", "null", "opposite", "smaller than margin", "small design", "collapsed"],
)
def test_regularization_helps_earns_the_label_its_truth_deserves(effect, design, expected):
    assert _helps(effect, design) in expected


def test_a_true_null_reads_reproduced_no_more_often_than_the_nominal_level():
    """50 draws of a moderate design with no effect: "reproduced" (or "helps, less than
    claimed", which also asserts a gain) at most as often as alpha allows."""
    design = Design(seeds=3, images=300)
    labels = [_helps({"vgg16": 0.0, "resnet26": 0.0}, design, seed) for seed in range(50)]
    false_gains = sum(label in (REPRODUCED, HELPS_LESS) for label in labels)
    assert false_gains <= 5  # 5 % of 50 is 2.5; 5 allows binomial noise, 0 is expected


def _stable(effect: float, design: Design, seed: int = 0) -> dict[str, str]:
    results = attribution_results(effect, design, np.random.default_rng(seed))
    return {v.claim: v.verdict for v in stability_verdicts(results, plan=PLAN, primary=PRIMARY)}


def test_stability_claims_earn_the_labels_their_truth_deserves():
    big = _stable(0.4, STUDY)  # SSD 40 % lower for every regularizer
    assert big["regularized-stabler-occlusion"] == REPRODUCED
    assert big["regularized-stabler-gradcam"] == REPRODUCED
    # L1 and elastic net are no stabler than the other regularizers: "the most" fails.
    assert big["l1-stablest-occlusion"] in (NOT_REPRODUCED, INCONCLUSIVE, UNDERPOWERED)
    null = _stable(0.0, STUDY)
    assert null["regularized-stabler-occlusion"] == NOT_REPRODUCED
    assert null["regularized-stabler-gradcam"] == NOT_REPRODUCED
    opposite = _stable(-0.3, STUDY)
    assert opposite["regularized-stabler-gradcam"] == NOT_REPRODUCED
    small = _stable(0.0, Design(seeds=1, images=30))
    assert small["regularized-stabler-occlusion"] in (UNDERPOWERED, INCONCLUSIVE)
    collapsed = _stable(0.4, Design(collapsed=True))
    assert set(collapsed.values()) == {NOT_TESTABLE}


def test_every_verdict_carries_its_margin_interval_seeds_images_and_mde():
    results = adversarial_results({"vgg16": 0.05, "resnet26": 0.1}, STUDY, np.random.default_rng(1))
    for v in robustness_verdicts(results, plan=PLAN):
        assert v.margin is not None and v.mde is not None, v.claim
        assert v.seeds >= 1 and v.images >= 1, v.claim
        if v.low is not None:
            assert v.low <= v.effect <= v.high


def test_the_plan_sizes_seeds_from_the_base_models_replicate_seeds(monkeypatch):
    """Before any regularized arm has two seeds, the pilot's replicate base seeds give
    the variances (twice the base arm's, for a difference of two arms); with neither,
    the prior does; with paired seeds, the comparisons themselves."""
    from paperlib.report import power

    design = Design(seeds=2, images=1000, seed_sd=0.03)
    results = adversarial_results(dict.fromkeys(ARCHS, 0.0), design, np.random.default_rng(3))
    base = [r for r in results if r.params.regularizer == "base"]
    monkeypatch.setattr(power, "grid_results", lambda profile, experiment: (base, []))
    seed_var, image_var = power._base_variances("study", "regularization-helps")
    assert 0 < image_var < 1  # the variance of a difference of two 0/1 outcomes
    assert power._base_variances("study", "regularized-stabler-occlusion") is None
    assert power._variances(None, 0.02, (seed_var, image_var)) == (
        2 * seed_var,
        2 * image_var,
        "base's replicate seeds x 2",
    )
    assert power._variances(None, 0.02)[2] == "prior (no results)"
    paired = SimpleNamespace(comparisons=[{"image var": 0.1, "seed var": 0.01, "seeds": 2}])
    assert power._variances(paired, 0.02, (seed_var, image_var)) == (0.01, 0.1, "results")
    alike = SimpleNamespace(comparisons=[{"image var": 0.0, "seed var": 0.0, "seeds": 10}])
    assert power._variances(alike, 0.5) == (0.25, 0.0, "prior (results without spread)")


def test_the_plan_takes_a_seed_variance_of_zero_for_too_few_seeds_and_puts_the_prior_in_its_place():
    """A variance component is truncated at zero, and two seeds often give one. Taken at
    face value it would plan two seeds for any margin, as ResNet-26's first two base seeds
    did; the prior stands in for it, and the image variance is still the measured one."""
    from paperlib.report import power

    two_alike_seeds = (0.0, 0.2)
    assert power._variances(None, 0.02, two_alike_seeds) == (
        0.02**2,
        0.4,
        "base's replicate seeds x 2, prior (seed variance 0)",
    )
    truncated = SimpleNamespace(comparisons=[{"image var": 0.2, "seed var": 0.0, "seeds": 2}])
    assert power._variances(truncated, 0.02) == (
        0.02**2,
        0.2,
        "results (images), prior (seed variance 0)",
    )
    face_value = power._mde(0.0, 0.4, 2, 1000, 0.05 / 9, 0.8)
    planned = power._mde(*power._variances(None, 0.02, two_alike_seeds)[:2], 2, 1000, 0.05 / 9, 0.8)
    assert face_value < 0.06 < 1.0 < planned  # two seeds: seemingly ample, in truth useless
