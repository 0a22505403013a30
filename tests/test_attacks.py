"""Tests for paperlib.core.attacks (FGSM, PGD, DeepFool, batching) and metrics.attack_report,
on a tiny CNN trained on synthetic images and on linear models whose geometry is known."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
from torch import nn

from paperlib.core.accel import as_input
from paperlib.core.attacks import (
    attack_in_batches,
    autoattack_component,
    deepfool,
    fgsm,
    make_attack,
    pgd,
    random_targets,
    run_attack,
    standard_pgd,
)
from paperlib.core.metrics import attack_report, robustness_rho
from paperlib.core.registry import ATTACKS, AUTOATTACK_COMPONENTS
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import AttackConfig
from paperlib.core.train import adversarial_finetune, penalized_cross_entropy

CPU = torch.device("cpu")


def _linear(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()


def _mid_gray_images(n: int, seed: int = 0) -> torch.Tensor:
    """Pixels in [0.25, 0.75], so that small perturbations are never clipped."""
    return 0.25 + 0.5 * torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(dim=1)


def _l2(delta: torch.Tensor) -> torch.Tensor:
    return delta.flatten(1).norm(dim=1)


# --- FGSM and PGD: the L-inf ball and the pixel range ---------------------------------


@pytest.mark.parametrize("eps", [1 / 255, 8 / 255, 0.3])
def test_fgsm_stays_in_the_eps_ball_and_the_pixel_range(cnn, attacked, eps):
    x, y = attacked
    adv = make_attack("fgsm", cnn, AttackConfig(fgsm_eps=eps))(x, y)
    delta = (adv - x).abs()
    assert delta.max().item() <= eps + 1e-6
    assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    # FGSM moves every pixel by exactly eps unless the clip to [0, 1] stops it.
    unclipped = (adv > 0) & (adv < 1)
    assert unclipped.float().mean() > 0.5
    torch.testing.assert_close(delta[unclipped], torch.full_like(delta[unclipped], eps))


def test_fgsm_with_eps_zero_returns_the_images(cnn, attacked):
    x, y = attacked
    assert torch.equal(fgsm(cnn, 0.0)(x, y), x)


def test_fgsm_at_0_3_fools_the_undefended_model_more_than_at_1_over_255(cnn, attacked):
    x, y = attacked
    small, _ = attack_report(cnn, x, fgsm(cnn, 1 / 255)(x, y), y)
    large, _ = attack_report(cnn, x, fgsm(cnn, 0.3)(x, y), y)
    assert large.accuracy < small.accuracy
    assert large.success_rate >= 0.9
    assert large.linf == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize("eps", [8 / 255, 0.3])
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_stays_in_the_eps_ball_and_the_pixel_range(cnn, attacked, eps, targeted):
    x, y = attacked
    adv = pgd(cnn, eps, eps / 4, 5, targeted=targeted, seed=1)(x, y)
    assert (adv - x).abs().max().item() <= eps + 1e-6
    assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    assert not torch.equal(adv, x)


def test_make_attack_pgd_uses_the_profile_and_the_eps_override(cnn, attacked):
    x, y = attacked
    cfg = AttackConfig(pgd_eps=4 / 255, pgd_step=1 / 255, pgd_steps=3, pgd_targeted=False)
    adv = make_attack("pgd", cnn, cfg)(x, y)
    assert (adv - x).abs().max().item() <= 4 / 255 + 1e-6
    by_hand = pgd(cnn, 4 / 255, 1 / 255, 3, targeted=False)(x, y)
    assert torch.equal(adv, by_hand)
    wider = make_attack("pgd", cnn, cfg, eps=0.1)(x, y)  # the step becomes eps / 4
    assert torch.equal(wider, pgd(cnn, 0.1, 0.025, 3, targeted=False)(x, y))
    assert (wider - x).abs().max().item() <= 0.1 + 1e-6


def test_make_attack_rejects_an_unknown_attack_naming_the_choices(cnn):
    with pytest.raises(ValueError, match="unknown attack 'cw'") as err:
        make_attack("cw", cnn, AttackConfig())
    for name in ATTACKS:
        assert name in str(err.value)


# --- targeted PGD ---------------------------------------------------------------------


def test_every_autoattack_component_runs_on_the_channels_last_models_of_the_grid(cnn, attacked):
    """Models and batches are channels-last (``accel.place``, ``as_input``); torchattacks'
    FAB reshapes gradients with ``view``, which fails on that layout unless it runs in
    NCHW. The model comes back channels-last."""
    images, labels = attacked[0][:8], attacked[1][:8]
    assert images.is_contiguous(memory_format=torch.channels_last)
    for name in AUTOATTACK_COMPONENTS:
        attack = autoattack_component(name, cnn, 8 / 255, steps=3, queries=20)
        adversarial = attack(images, labels)
        assert (adversarial - images).abs().max() <= 8 / 255 + 1e-6, name
    conv = next(m for m in cnn.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_random_targets_are_seeded_and_never_the_label():
    labels = torch.arange(1000) % 10
    images = torch.zeros(1000, 3, 32, 32)
    first = random_targets(7)(images, labels)
    assert torch.equal(first, random_targets(7)(images, labels))
    assert not torch.equal(first, random_targets(8)(images, labels))
    assert (first != labels).all()
    assert first.min() >= 0 and first.max() <= 9
    # Every wrong class is drawn, about equally often (1000 / 9 = 111 each).
    offsets = (first - labels) % 10
    counts = torch.bincount(offsets, minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 70 and counts[1:].max() < 160


def test_targeted_pgd_pushes_images_towards_the_seeded_targets(cnn, attacked):
    x, y = attacked
    seed = 3
    targets = random_targets(seed)(x, y)
    other_targets = random_targets(seed + 1)(x, y)
    small = pgd(cnn, 8 / 255, 2 / 255, 10, targeted=True, seed=seed)(x, y)
    with torch.no_grad():
        clean_logit = cnn(x).gather(1, targets[:, None]).squeeze(1)
        small_logit = cnn(small).gather(1, targets[:, None]).squeeze(1)
    assert (small_logit > clean_logit).float().mean() >= 0.9
    large = pgd(cnn, 0.3, 0.05, 10, targeted=True, seed=seed)(x, y)
    hits = _predict(cnn, large)
    assert (hits == targets).float().mean() >= 0.9
    # The images go to this seed's targets, not to another seed's.
    assert (hits == other_targets).float().mean() <= 0.3


def test_untargeted_pgd_at_a_large_eps_fools_most_images(cnn, attacked):
    x, y = attacked
    adv = pgd(cnn, 0.3, 0.05, 10, targeted=False)(x, y)
    assert (_predict(cnn, adv) != y).float().mean() >= 0.9


# --- DeepFool -------------------------------------------------------------------------


def _nearest_boundary(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L2 distance from each image to its nearest linear boundary f_k = f_y (analytic)."""
    linear = model[1]
    with torch.no_grad():
        logits = model(x)
        gaps = (logits - logits.gather(1, y[:, None])).abs()  # |f_k - f_y|
        w_diff = linear.weight[None, :, :] - linear.weight[y][:, None, :]  # (n, 10, d)
        dist = gaps / w_diff.norm(dim=2)
        dist[torch.arange(len(y)), y] = math.inf
    return dist.min(dim=1).values


def test_deepfool_on_a_linear_model_lands_just_past_the_nearest_boundary():
    model = _linear()
    x = _mid_gray_images(40)
    y = _predict(model, x)
    adv = deepfool(model, x, y)
    assert (_predict(model, adv) != y).all()
    # The linearization is exact: one step of length |f_k - f_y| / ||w_k - w_y||, plus
    # the 1e-4 logit margin DeepFool adds.
    expected = _nearest_boundary(model, x, y)
    torch.testing.assert_close(_l2(adv - x), expected, rtol=1e-3, atol=1e-3)
    # Half the perturbation leaves every image on its own side.
    assert torch.equal(_predict(model, x + 0.5 * (adv - x)), y)


def test_deepfool_returns_misclassified_images_unchanged():
    model = _linear(seed=1)
    x = _mid_gray_images(20, seed=1)
    predicted = _predict(model, x)
    wrong = torch.arange(20) % 2 == 1
    y = torch.where(wrong, (predicted + 1) % 10, predicted)
    adv = deepfool(model, x, y)
    assert torch.equal(adv[wrong], x[wrong])
    assert (_l2(adv[~wrong] - x[~wrong]) > 0).all()
    assert (_predict(model, adv[~wrong]) != y[~wrong]).all()


def test_deepfool_fools_the_undefended_cnn_with_small_l2_perturbations(cnn, attacked):
    x, y = attacked
    right = _predict(cnn, x) == y
    adv = deepfool(cnn, x, y)
    assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    assert (_predict(cnn, adv[right]) != y[right]).float().mean() >= 0.99
    report, still_right = attack_report(cnn, x, adv, y)
    assert report.success_rate >= 0.99
    assert report.accuracy == pytest.approx(still_right.float().mean().item())
    deepfool_l2 = _l2(adv - x)[right].median()
    fgsm_l2 = _l2(fgsm(cnn, 0.3)(x, y) - x)[right].median()
    assert deepfool_l2 < 0.25 * fgsm_l2


def test_deepfool_in_a_batch_equals_deepfool_image_by_image(cnn, attacked):
    x, y = (t[:5] for t in attacked)
    batched = deepfool(cnn, x, y, candidates=3)
    alone = torch.cat([deepfool(cnn, x[i : i + 1], y[i : i + 1], candidates=3) for i in range(5)])
    assert not torch.equal(batched, x)
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)


def test_make_attack_deepfool_uses_the_profiles_settings(cnn, attacked):
    x, y = attacked
    cfg = AttackConfig(deepfool_steps=3, deepfool_overshoot=0.02, deepfool_candidates=3)
    adv = make_attack("deepfool", cnn, cfg)(x, y)
    assert torch.equal(adv, deepfool(cnn, x, y, steps=3, overshoot=0.02, candidates=3))
    assert not torch.equal(adv, deepfool(cnn, x, y, steps=3, overshoot=1e-6, candidates=3))


# --- attack_report --------------------------------------------------------------------


def _two_class_identity() -> nn.Sequential:
    """Predicts class 0 when the first pixel is the larger one, class 1 otherwise."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
    return model


def _pixels(rows) -> torch.Tensor:
    return torch.tensor(rows).view(-1, 1, 1, 2)


CLEAN = _pixels([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])  # 0, 0, 1, 0, 1
LABELS = torch.tensor([0, 0, 1, 1, 0])  # images 0-2 right, 3 and 4 wrong before the attack
ADVERSARIAL = _pixels(
    [
        [0.4, 0.6],  # flipped: the attack succeeds; L-inf 0.5, L2 sqrt(0.5)
        [0.7, 0.3],  # moved but still right: L-inf 0.1, L2 sqrt(0.02)
        [0.3, 0.7],  # untouched, still right
        [0.1, 0.9],  # was wrong, now right: not an attack success or failure
        [0.2, 0.8],  # was wrong, still wrong
    ]
)


def test_attack_report_counts_success_and_norms_over_originally_correct_images():
    report, now_right = attack_report(_two_class_identity(), CLEAN, ADVERSARIAL, LABELS)
    assert now_right.tolist() == [False, True, True, True, False]
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.success_rate == pytest.approx(1 / 3)
    assert report.linf == pytest.approx((0.5 + 0.1 + 0.0) / 3, abs=1e-6)
    assert report.l2 == pytest.approx((math.sqrt(0.5) + math.sqrt(0.02)) / 3, abs=1e-6)


def test_attack_report_reads_uint8_clean_images_as_pixels_over_255():
    model = _two_class_identity()
    clean_u8 = (CLEAN * 255).round().to(torch.uint8)
    from_u8, right_u8 = attack_report(model, clean_u8, ADVERSARIAL, LABELS)
    from_float, right_float = attack_report(model, clean_u8.float() / 255, ADVERSARIAL, LABELS)
    assert torch.equal(right_u8, right_float)
    u8, floats = dataclasses.asdict(from_u8), dataclasses.asdict(from_float)
    assert u8.pop("rho_ci") == pytest.approx(floats.pop("rho_ci"))
    assert u8 == pytest.approx(floats)


def test_attack_report_with_no_correct_image_reports_zero_success():
    every_label_wrong = torch.tensor([1, 1, 0, 1, 0])
    report, now_right = attack_report(_two_class_identity(), CLEAN, ADVERSARIAL, every_label_wrong)
    assert report.success_rate == report.linf == report.l2 == 0.0
    assert report.rho is None and report.fooled == report.not_fooled == 0
    assert report.accuracy == pytest.approx(2 / 5)
    assert now_right.tolist() == [True, False, False, True, False]


# --- batching and the attack pipeline -------------------------------------------------


def test_attack_in_batches_equals_one_call_on_all_images(synthetic):
    model = _linear(seed=2)
    images, labels = synthetic.test_images, synthetic.test_labels
    attack = fgsm(model, 8 / 255)
    batched = attack_in_batches(attack, images, labels, batch_size=7, device=CPU)
    assert batched.dtype == torch.float32 and batched.shape == images.shape
    torch.testing.assert_close(batched, attack(as_input(images), labels), rtol=0, atol=1e-7)
    from_floats = attack_in_batches(attack, as_input(images), labels, len(labels), CPU)
    torch.testing.assert_close(batched, from_floats, rtol=0, atol=1e-7)


def test_run_attack_report_agrees_with_its_adversarials(cnn, synthetic):
    images, labels = synthetic.test_images, synthetic.test_labels
    cfg = AttackConfig(fgsm_eps=0.3, batch_size=20)
    report, still_right, adv = run_attack("fgsm", cnn, cfg, images, labels, CPU, eps=4 / 255)
    assert (adv - as_input(images)).abs().max().item() <= 4 / 255 + 1e-6
    assert torch.equal(still_right, _predict(cnn, adv) == labels)
    assert report.accuracy == pytest.approx(still_right.float().mean().item())
    assert report.linf == pytest.approx(4 / 255, abs=1e-6)


def test_adversarial_finetune_trains_a_copy_and_leaves_the_model_untouched(synthetic):
    model = _linear(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean_set = (synthetic.train_images[:100], synthetic.train_labels[:100])
    val_set = (synthetic.test_images, synthetic.test_labels)
    tuned, history = adversarial_finetune(
        model,
        fgsm(model, 8 / 255),
        clean_set,
        val_set,
        attack_batch=40,
        objective=penalized_cross_entropy(make_penalty("base", 0.0)),
        epochs=2,
        batch_size=50,
        lr=1e-3,
        seed=0,
        device=CPU,
        progress=False,
    )
    assert tuned is not model
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert not torch.equal(tuned[1].weight, model[1].weight)
    assert [h["epoch"] for h in history] == [1, 2]


@pytest.mark.parametrize("name", ["fgsm", "pgd", "deepfool"])
def test_adversarial_training_images_stay_adversarial(synthetic, cnn, monkeypatch, name):
    """The fine-tuning set must hold the crafted images at the precision that makes them
    adversarial. DeepFool's steps are far below one grey level: rounded to 8-bit
    pixels, most of its images would be classified correctly again."""
    cfg = AttackConfig(fgsm_eps=0.3, pgd_eps=0.3, pgd_step=0.1, pgd_steps=5, deepfool_steps=20)
    images, labels = synthetic.train_images[:120], synthetic.train_labels[:120]
    trained_on = {}

    def record(model, train_set, val_set, **kwargs):
        trained_on["set"] = train_set
        return []

    # paperlib re-exports the function train, which hides the module of the same name.
    monkeypatch.setattr(sys.modules["paperlib.core.train"], "train", record)
    adversarial_finetune(
        cnn,
        make_attack(name, cnn, cfg),
        (images, labels),
        (synthetic.test_images, synthetic.test_labels),
        attack_batch=60,
        device=CPU,
    )
    mixed, mixed_labels = trained_on["set"]
    crafted = mixed[len(images) :]
    assert crafted.dtype == torch.float32 and torch.equal(mixed_labels[len(images) :], labels)
    assert torch.equal(mixed[: len(images)], as_input(images))  # the clean half
    with torch.no_grad():
        was_right = cnn(as_input(images)).argmax(dim=1) == labels
        still_fooled = cnn(crafted).argmax(dim=1) != labels
    assert was_right.float().mean() >= 0.9
    assert still_fooled[was_right].float().mean() >= 0.95


def test_rho_is_the_median_norm_ratio_over_fooled_images_only():
    """Three images that were right: two fooled with ||r|| / ||x|| of 0.1 and 0.3, one
    not fooled with a huge perturbation that must not enter the median."""
    clean = torch.ones(4, 4)  # ||x|| = 2
    delta = torch.zeros(4, 4)
    delta[0, 0], delta[1, 0], delta[2, 0] = 0.2, 0.6, 50.0
    was_right = torch.tensor([True, True, True, False])
    fooled = torch.tensor([True, True, False, False])
    report = robustness_rho(clean, delta, fooled, was_right)
    assert report["rho"] == pytest.approx(0.2)  # the median of 0.1 and 0.3
    assert report["fooled"] == 2 and report["not_fooled"] == 1
    low, high = report["rho_ci"]
    assert 0.1 - 1e-6 <= low <= high <= 0.3 + 1e-6


def test_rho_of_an_attack_that_fooled_nothing_is_missing_not_zero():
    report = robustness_rho(
        torch.ones(2, 4), torch.zeros(2, 4), torch.zeros(2, dtype=bool), torch.ones(2, dtype=bool)
    )
    assert report["rho"] is None and report["rho_ci"] == (None, None)
    assert report["fooled"] == 0 and report["not_fooled"] == 2


def test_deepfool_report_carries_rho(cnn, attacked):
    x, y = attacked
    report, _ = attack_report(cnn, x, deepfool(cnn, x, y), y)
    assert 0 < report.rho < 0.5 and report.not_fooled == 0
    assert report.rho_ci[0] <= report.rho <= report.rho_ci[1]


def test_standard_pgd_is_untargeted_from_a_random_start_inside_the_ball(cnn, attacked):
    x, y = attacked
    eps = 0.1
    torch.manual_seed(0)
    adv = standard_pgd(cnn, eps, steps=5, restarts=1)(x, y)
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    torch.manual_seed(1)
    other_start = standard_pgd(cnn, eps, steps=5, restarts=1)(x, y)
    assert not torch.equal(adv, other_start)  # the start is random
    right = _predict(cnn, x) == y
    assert (_predict(cnn, adv)[right] != y[right]).float().mean() > 0.5


def test_standard_pgd_restarts_are_stronger_than_one_run(cnn, attacked):
    x, y = attacked
    eps = 0.07  # one single-step run fools some images, not all: restarts have work left

    def accuracy_under(restarts):
        torch.manual_seed(0)
        adv = standard_pgd(cnn, eps, steps=1, restarts=restarts)(x, y)
        return (_predict(cnn, adv) == y).float().mean().item()

    once = accuracy_under(1)
    assert 0 < once < 1
    assert accuracy_under(3) < once  # the same first run, then two more on the survivors


def test_make_attack_pgd_standard_uses_the_profiles_steps_and_restarts(cnn, attacked):
    x, y = attacked
    cfg = AttackConfig(standard_steps=4, standard_restarts=1)
    torch.manual_seed(0)
    made = make_attack("pgd_standard", cnn, cfg, eps=2 / 255)(x, y)
    torch.manual_seed(0)
    assert torch.equal(made, standard_pgd(cnn, 2 / 255, steps=4, restarts=1)(x, y))
