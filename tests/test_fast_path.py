"""The fast path: on-device augmentation, the device switches, torch.compile, and attacks
in bf16 that fool the same images as in float32."""

import pytest
import torch
from torch import nn

import paperlib.core.train
from paperlib.core.accel import as_input, autocast, autotuned, exact_float32, full_precision, place
from paperlib.core.attacks import (
    attack_in_batches,
    autoattack_component,
    in_fast_path,
    make_attack,
    run_autoattack,
)
from paperlib.core.augment import random_crop_flip
from paperlib.core.metrics import correct
from paperlib.core.models import make_model
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import AttackConfig
from paperlib.core.stats import mcnemar_p
from paperlib.core.train import penalized_cross_entropy, train


def _batch(n=6, c=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), generator=g, dtype=torch.uint8)


def _crops(image, padding):
    """Every crop and flipped crop the augmentation may return for ``image``."""
    size = image.shape[-1]
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + size, left : left + size]
            yield crop
            yield crop.flip(-1)


def test_each_augmented_image_is_a_padded_crop_of_its_own_source_maybe_flipped():
    images = _batch()
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8
    for source, augmented in zip(images, out, strict=True):
        assert any(torch.equal(augmented, crop) for crop in _crops(source, 2))


def test_augmentation_draws_every_offset_and_both_flips():
    image = torch.arange(64, dtype=torch.uint8).reshape(1, 1, 8, 8).repeat(400, 1, 1, 1)
    out = random_crop_flip(image, torch.Generator().manual_seed(0), padding=1)
    seen = {next(i for i, c in enumerate(_crops(image[0], 1)) if torch.equal(o, c)) for o in out}
    assert seen == set(range(18))  # 3 x 3 offsets, each flipped or not


def test_augmentation_is_reproducible_from_its_generator_and_varies_without_it():
    images = _batch(n=32)
    first = random_crop_flip(images, torch.Generator().manual_seed(5))
    again = random_crop_flip(images, torch.Generator().manual_seed(5))
    other = random_crop_flip(images, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_zero_padding_only_flips():
    images = _batch()
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0)
    for source, augmented in zip(images, out, strict=True):
        assert torch.equal(augmented, source) or torch.equal(augmented, source.flip(-1))


@pytest.mark.parametrize("bad", [torch.zeros(3, 8, 8, dtype=torch.uint8)])
def test_augmentation_rejects_an_unbatched_image(bad):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_crop_flip(bad, torch.Generator())


def test_on_a_cpu_only_the_layout_changes():
    """Channels-last on the CPU too (faster convolutions), the same values, float32."""
    model = nn.Conv2d(3, 4, 3)
    before = model.weight.clone()
    x = as_input(_batch())
    expected = model(x.contiguous())
    assert place(model, torch.device("cpu")) is model
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(model.weight, before)
    assert x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert x.is_contiguous(memory_format=torch.channels_last)
    with autocast(torch.device("cpu")):
        out = model(x)
    assert out.dtype == torch.float32  # no reduced precision off CUDA
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def _small_cnn() -> nn.Module:
    """Small enough to compile in seconds, with the parts that matter: convolution,
    batch norm, dropout and a penalized dense layer."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),  # a bias before batch norm learns only noise
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(8 * 8 * 8, 10),
    )


def _train_small(compile: bool, augment: bool = True):
    torch.manual_seed(0)
    model = _small_cnn()
    images = _batch(n=64, size=32, seed=1)
    labels = torch.arange(64) % 10
    history = train(
        model,
        (images, labels),
        (images[:32], labels[:32]),
        objective=penalized_cross_entropy(make_penalty("l2", 0.01)),
        epochs=2,
        batch_size=16,
        lr=1e-3,
        seed=0,
        device=torch.device("cpu"),
        augment=augment,
        compile=compile,
        progress=False,
    )
    return model, history


def test_augmented_training_is_reproducible_and_differs_from_plain_training():
    _, first = _train_small(compile=False)
    _, again = _train_small(compile=False)
    _, plain = _train_small(compile=False, augment=False)
    assert first == again
    assert first[0]["train_loss"] != plain[0]["train_loss"]


@pytest.mark.slow
def test_compiled_and_eager_training_give_the_same_model(monkeypatch):
    import torch._inductor.config

    # Compiled dropout draws from its own generator unless told to use eager's; with the
    # same draws, the two runs differ only by floating-point rounding.
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    eager_model, eager = _train_small(compile=False)
    compiled_model, compiled = _train_small(compile=True)
    for e, c in zip(eager, compiled, strict=True):
        for key in ("train_loss", "val_loss"):
            assert c[key] == pytest.approx(e[key], rel=1e-4), key
        for key in ("train_acc", "val_acc"):  # rounding may flip at most one prediction
            assert abs(c[key] - e[key]) <= 1 / 32, key
    for (name, e), c in zip(
        eager_model.state_dict().items(), compiled_model.state_dict().values(), strict=True
    ):
        assert torch.allclose(e.float(), c.float(), rtol=1e-3, atol=1e-4), name


@pytest.fixture
def cuda_flags():
    """The global backend flags, restored after the test."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    yield
    (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    ) = saved


def test_float32_passes_on_cuda_are_not_tf32(cuda_flags):
    """TF32's rounding exceeds DeepFool's overshoot and logit margin; it stays off."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    exact_float32()
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_cudnn_autotunes_inside_training_alone(cuda_flags, monkeypatch):
    """On CUDA, autotuning is on while ``train`` runs and off before and after (attacks
    and attributions bring a new batch shape at every step); on a CPU it is untouched."""
    torch.backends.cudnn.benchmark = False
    with autotuned(torch.device("cpu")):
        assert not torch.backends.cudnn.benchmark
    with autotuned(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.benchmark
    seen = []
    real = paperlib.core.train.evaluate

    def watching(*args, **kwargs):  # runs inside train's epoch loop
        seen.append(torch.backends.cudnn.benchmark)
        return real(*args, **kwargs)

    monkeypatch.setattr(paperlib.core.train, "evaluate", watching)
    monkeypatch.setattr(
        paperlib.core.train, "autotuned", lambda device: autotuned(torch.device("cuda"))
    )
    _train_small(compile=False)
    assert seen and all(seen) and not torch.backends.cudnn.benchmark


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_on_cuda_models_go_channels_last_and_forward_passes_run_in_bf16():
    device = torch.device("cuda")
    model = place(make_model("vgg16", width=0.0625), device)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not torch.backends.cudnn.benchmark  # autotuning is for training alone
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    x = as_input(_batch(n=4, size=32).to(device))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with autocast(device):
        assert conv(x).dtype == torch.bfloat16 and model(x).dtype == torch.bfloat16


@cuda
def test_on_cuda_augmentation_stays_on_the_device_and_matches_its_seed():
    images = _batch(n=64, size=32).cuda()
    first = random_crop_flip(images, torch.Generator(device="cuda").manual_seed(3))
    again = random_crop_flip(images, torch.Generator(device="cuda").manual_seed(3))
    assert first.is_cuda and torch.equal(first, again)
    for source, augmented in zip(images[:4].cpu(), first[:4].cpu(), strict=True):
        assert any(torch.equal(augmented, crop) for crop in _crops(source, 4))


# --- attacks in the fast path --------------------------------------------------------


def _bf16_on_this_device(monkeypatch):
    """The fast path as this machine runs it: CUDA's bf16 autocast, or on a CPU the same
    autocast on the CPU (which the fast path itself leaves off, to stay exact)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    monkeypatch.setattr(
        "paperlib.core.attacks.autocast", lambda device: torch.autocast("cpu", dtype=torch.bfloat16)
    )
    return torch.device("cpu")


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_standard", "apgd-ce", "apgd-t"])
def test_the_fast_path_fools_the_same_images_within_noise(name, cnn, synthetic, monkeypatch):
    images, labels = synthetic.train_images[:200], synthetic.train_labels[:200]
    with full_precision():  # the float32 reference
        exact = _fooled(name, cnn, images, labels, torch.device("cpu"))
    device = _bf16_on_this_device(monkeypatch)
    model = cnn.to(device)
    seen = []
    hook = model[-1].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        fast = _fooled(name, model, images, labels, device)
    finally:
        hook.remove()
        cnn.to("cpu")
    assert torch.bfloat16 in seen  # the attack really ran in bf16
    assert 0 < exact.float().mean() < 1  # a radius where rounding could matter
    assert abs(fast.float().mean() - exact.float().mean()) <= 0.05
    assert mcnemar_p(fast.numpy(), exact.numpy(), "two-sided") > 0.05


AUTOATTACK = ("apgd-ce", "apgd-t", "fab-t", "square")


def _fooled(name, model, images, labels, device):
    """Which images ``name`` fools at eps = 6/255 (where FGSM fools about half of them
    here), judged in float32 as the grid does."""
    eps = 6 / 255
    cfg = AttackConfig(fgsm_eps=eps, pgd_eps=eps, pgd_step=eps / 4, pgd_steps=10)
    if name in AUTOATTACK:
        attack = in_fast_path(autoattack_component(name, model, eps, 10, 200))
    else:
        attack = make_attack(name, model, cfg)
    torch.manual_seed(0)  # random starts
    adversarial = attack_in_batches(attack, images, labels, 100, device)
    return ~correct(model, adversarial, labels.to(device)).cpu()


def test_autoattack_runs_whole_in_the_fast_path(cnn, synthetic, monkeypatch):
    """Every component in the chain, where each later one meets the images the earlier
    ones left standing: under bf16 APGD-T and Square once crashed on bf16 logits (and
    their acceptance tests compared rounded logits), so the components see float32
    logits."""
    images, labels = synthetic.train_images[:100], synthetic.train_labels[:100]
    cfg = AttackConfig(autoattack=AUTOATTACK, autoattack_steps=5, square_queries=50)
    with full_precision():
        exact, _, _ = run_autoattack(cnn, cfg, images, labels, torch.device("cpu"), eps=6 / 255)
    device = _bf16_on_this_device(monkeypatch)
    fast, _, _ = run_autoattack(cnn.to(device), cfg, images, labels, device, eps=6 / 255)
    cnn.to("cpu")
    assert 0 < exact.accuracy < 1  # images reached the later components
    assert abs(fast.accuracy - exact.accuracy) <= 0.05


def test_autoattack_components_see_float32_logits_whatever_the_model_returns():
    """A model that answers in bf16, as under CUDA's autocast, gives AutoAttack's
    components float32 logits; a float32 model's logits pass through untouched."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    x = torch.rand(4, 3, 2, 2)
    for name in ("apgd-ce", "apgd-t", "square"):  # FAB runs inside a layout wrapper
        seen = autoattack_component(name, model, 0.1, 2, 10).model
        assert torch.equal(seen(x), model(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(x).dtype == torch.bfloat16 and seen(x).dtype == torch.float32
