"""Adversarial attacks on models that take pixels in [0, 1].

FGSM, PGD and AutoAttack's components come from torchattacks. DeepFool is our own
batched implementation: torchattacks' DeepFool computes a Jacobian one image at a time,
which is far too slow for a grid (the book's adversarial chapter compares the two).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from paperlib.core.accel import as_input, autocast
from paperlib.core.memory import images_per_pass, rows_per_pass
from paperlib.core.metrics import attack_report, correct
from paperlib.core.records import AutoAttackReport
from paperlib.core.settings import AttackConfig

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images, labels) -> adversarial


def fgsm(model: nn.Module, eps: float) -> Attack:
    """Fast Gradient Sign Method (Goodfellow et al. 2015), L-inf, untargeted."""
    import torchattacks  # here: importing it (and SciPy) costs notebooks that never attack

    return torchattacks.FGSM(model, eps=eps)


def pgd(
    model: nn.Module, eps: float, step: float, steps: int, targeted: bool, seed: int = 0
) -> Attack:
    """Projected Gradient Descent (Madry et al. 2018), L-inf, no random start (as ART).

    Targeted mode draws a random target class other than the true one for each image
    (from its own seeded generator, so runs repeat) and descends the loss towards it,
    as the paper describes.
    """
    import torchattacks  # here, as in fgsm()

    attack = torchattacks.PGD(model, eps=eps, alpha=step, steps=steps, random_start=False)
    if targeted:
        attack.set_mode_targeted_by_function(random_targets(seed), quiet=True)
    return attack


def standard_pgd(model: nn.Module, eps: float, steps: int, restarts: int) -> Attack:
    """PGD as robustness is usually reported (Madry et al. 2018): untargeted, from a
    random start in the eps-ball, step eps / 4, the worst of ``restarts`` runs per image.

    Each restart attacks only the images the earlier ones left correctly classified
    (torchattacks' ``MultiAttack``); random starts draw from torch's global generator,
    which the notebooks seed.
    """
    import torchattacks  # here, as in fgsm()

    runs = [
        torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=steps, random_start=True)
        for _ in range(restarts)
    ]
    return runs[0] if restarts == 1 else torchattacks.MultiAttack(runs)


def autoattack_component(
    name: str, model: nn.Module, eps: float, steps: int, queries: int, seed: int = 0
) -> Attack:
    """One of AutoAttack's four attacks (Croce and Hein 2020), L-inf, as its standard
    version sets them: APGD on the cross-entropy, APGD on the targeted DLR loss and
    targeted FAB (each against the 9 other classes), and the gradient-free Square."""
    import torchattacks  # here, as in fgsm()

    model = FloatLogits(model)
    common = dict(eps=eps, norm="Linf", seed=seed, n_restarts=1)
    builders = {
        "apgd-ce": lambda: torchattacks.APGD(model, steps=steps, loss="ce", **common),
        "apgd-t": lambda: torchattacks.APGDT(model, steps=steps, n_classes=10, **common),
        "fab-t": lambda: in_nchw_layout(
            model,
            torchattacks.FAB(model, steps=steps, multi_targeted=True, n_classes=10, **common),
        ),
        "square": lambda: torchattacks.Square(model, n_queries=queries, **common),
    }
    if name not in builders:
        raise ValueError(f"unknown AutoAttack component {name!r}; choose one of {sorted(builders)}")
    return builders[name]()


class FloatLogits(nn.Module):
    """``model`` with its logits returned in float32.

    Under CUDA's bf16 autocast the logits come back in bf16, and AutoAttack's components
    keep float32 state beside them: APGD-T's step-size schedule and Square's index-put
    then fail on the dtype, and their best-point and acceptance tests would compare
    rounded logits. The passes still run in bf16; only their answers are widened. On
    float32 logits (every CPU run) ``float()`` returns the same tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float()


def in_nchw_layout(model: nn.Module, attack: Attack) -> Attack:
    """``attack`` run on ``model`` and images in the plain NCHW layout, the model put back
    in the channels-last layout of ``accel.place`` afterwards.

    torchattacks' FAB reshapes input gradients with ``view``, which fails on
    channels-last tensors; the layout changes no value."""

    def run(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        model.to(memory_format=torch.contiguous_format)
        try:
            return attack(images.contiguous(), labels)
        finally:
            model.to(memory_format=torch.channels_last)

    return run


def run_autoattack(
    model: nn.Module,
    cfg: AttackConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    eps: float,
):
    """AutoAttack with the profile's components: ``(report, per-image correct, adversarials)``.

    Each component attacks only the images that the clean model and the earlier
    components left correctly classified, as AutoAttack does; the report adds how many
    images each component fooled first (``fooled_by``), so that the gradient-masking
    audit can see what the gradient-free Square found beyond the gradient-based attacks.
    """
    model.eval()
    adversarial = as_input(images, torch.device("cpu")).clone()  # filled in place below
    standing = correct(model, adversarial, labels)
    fooled_by = {}
    for name in cfg.autoattack:
        left = standing.nonzero().flatten()
        fooled_by[name] = 0
        if len(left) == 0:
            continue
        attack = within_budget(
            model,
            in_fast_path(
                autoattack_component(name, model, eps, cfg.autoattack_steps, cfg.square_queries)
            ),
        )
        found = attack_in_batches(attack, adversarial[left], labels[left], cfg.batch_size, device)
        fooled = ~correct(model, found, labels[left])
        adversarial[left[fooled]] = found[fooled].cpu()
        standing[left[fooled]] = False
        fooled_by[name] = int(fooled.sum())
    report, still_correct = attack_report(model, images, adversarial.to(device), labels)
    report = AutoAttackReport(**vars(report), components=list(cfg.autoattack), fooled_by=fooled_by)
    return report, still_correct, adversarial


def random_targets(seed: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(images, labels) -> targets``: a uniformly random class other than the label."""
    generator = torch.Generator().manual_seed(seed)

    def targets(images, labels):
        offset = torch.randint(1, 10, labels.shape, generator=generator).to(labels.device)
        return (labels + offset) % 10

    return targets


@torch.enable_grad()
def deepfool(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 100,
    overshoot: float = 1e-6,
    candidates: int = 10,
) -> torch.Tensor:
    """DeepFool (Moosavi-Dezfooli et al. 2016), L2, batched.

    Every image of the batch advances together. Each iteration costs one forward and
    one backward pass over ``len(active) * candidates`` rows, where the candidates are
    the classes with the highest clean logits (the original class first); on CUDA the
    pass is split into as many as the memory budget asks (``memory.rows_per_pass``), on
    a CPU never. An image leaves the active set as soon as it is misclassified. The
    accumulated step is scaled by ``1 + overshoot`` and the result clipped to [0, 1].
    Images that are already misclassified are returned unchanged.
    """
    model.eval()
    x0 = images.detach()
    with torch.no_grad():
        logits = model(x0)
    # Column 0 is the true class, then the other classes by falling clean logit.
    order = logits.argsort(dim=1, descending=True)
    others = order[order != labels[:, None]].view(len(x0), -1)[:, : candidates - 1]
    classes = torch.cat([labels[:, None], others], dim=1)
    total = torch.zeros_like(x0)
    active = (logits.argmax(dim=1) == labels).nonzero().flatten()
    per_pass = images_per_pass(rows_per_pass(model, x0), classes.shape[1], len(x0))
    for _ in range(steps):
        if len(active) == 0:
            break
        x = (x0[active] + (1 + overshoot) * total[active]).clamp(0, 1)
        step, still = _deepfool_in_passes(model, x, classes[active], per_pass)
        total[active] += step
        active = active[still]
    return (x0 + (1 + overshoot) * total).clamp(0, 1).detach()


def _deepfool_in_passes(model: nn.Module, x: torch.Tensor, classes: torch.Tensor, per_pass: int):
    """``_deepfool_step`` on ``per_pass`` images at a time; each image's step depends on
    its own rows only, so the split changes no image."""
    if len(x) <= per_pass:
        return _deepfool_step(model, x, classes)
    parts = [
        _deepfool_step(model, xs, cs)
        for xs, cs in zip(x.split(per_pass), classes.split(per_pass), strict=True)
    ]
    return torch.cat([step for step, _ in parts]), torch.cat([still for _, still in parts])


def _deepfool_step(model: nn.Module, x: torch.Tensor, classes: torch.Tensor):
    """One linearized step for each image; also says which images are still unfooled."""
    n, k = classes.shape
    rows = x.repeat_interleave(k, dim=0).requires_grad_(True)
    logits = model(rows)
    picked = logits.gather(1, classes.reshape(-1, 1)).view(n, k)
    (grads,) = torch.autograd.grad(picked.sum(), rows)
    grads = grads.view(n, k, *x.shape[1:])
    still = logits.view(n, k, -1)[:, 0].argmax(dim=1) == classes[:, 0]
    f = (picked[:, 1:] - picked[:, :1]).detach()  # logit gap to each other class (< 0)
    w = grads[:, 1:] - grads[:, :1]  # its gradient
    w_norm = w.flatten(2).norm(dim=2) + 1e-8
    nearest = (f.abs() / w_norm).argmin(dim=1)  # the closest linearized boundary
    pick = torch.arange(n, device=x.device)
    scale = (f[pick, nearest].abs() + 1e-4) / w_norm[pick, nearest] ** 2
    step = scale.view(-1, *[1] * (x.dim() - 1)) * w[pick, nearest]
    return step * still.view(-1, *[1] * (x.dim() - 1)), still


def in_fast_path(attack: Attack) -> Attack:
    """``attack`` under the device's bf16 autocast (nothing changes on a CPU).

    Only for attacks that search: the model's passes run in bf16, while the loss, the
    gradient with respect to the float32 image and the update of the image stay float32.
    Whether an image counts as fooled is always decided afterwards, in float32
    (``metrics.attack_report``). DeepFool stays in float32 throughout: its step is
    computed from the logit gaps themselves, which bf16 would round.
    """

    def run(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with autocast(images.device):
            return attack(images, labels)

    return run


def within_budget(model: nn.Module, attack: Attack) -> Attack:
    """``attack`` on as many images at a time as the device's memory budget allows, one
    row each (``memory.rows_per_pass``). On a CPU ``attack`` gets every image it is
    given, as before the budget. The attacks here treat each image on its own, except
    that their random draws fall differently when the images come in smaller groups."""

    def run(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_pass = images_per_pass(rows_per_pass(model, images), 1, len(images))
        if per_pass >= len(images):
            return attack(images, labels)
        pairs = zip(images.split(per_pass), labels.split(per_pass), strict=True)
        return torch.cat([attack(x, y) for x, y in pairs])

    return run


def deepfool_attack(
    model: nn.Module, *, steps: int, overshoot: float, candidates: int = 10
) -> Attack:
    """Our batched ``deepfool`` as an attack: ``(images, labels) -> adversarial``."""
    return lambda images, labels: deepfool(
        model, images, labels, steps=steps, overshoot=overshoot, candidates=candidates
    )


def make_attack(name: str, model: nn.Module, cfg: AttackConfig, eps: float | None = None) -> Attack:
    """An attack from the registry with the profile's settings; ``eps`` overrides its radius.
    FGSM and both PGDs run in the fast path (``in_fast_path``), DeepFool in float32;
    each holds no more rows per pass than the device's memory budget allows."""
    builders = {
        "fgsm": lambda: fgsm(model, cfg.fgsm_eps if eps is None else eps),
        "pgd": lambda: pgd(
            model,
            cfg.pgd_eps if eps is None else eps,
            cfg.pgd_step if eps is None else eps / 4,
            cfg.pgd_steps,
            cfg.pgd_targeted,
        ),
        "pgd_standard": lambda: standard_pgd(
            model, cfg.pgd_eps if eps is None else eps, cfg.standard_steps, cfg.standard_restarts
        ),
        "deepfool": lambda: deepfool_attack(
            model,
            steps=cfg.deepfool_steps,
            overshoot=cfg.deepfool_overshoot,
            candidates=cfg.deepfool_candidates,
        ),
    }
    if name not in builders:
        raise ValueError(f"unknown attack {name!r}; choose one of {sorted(builders)}")
    attack = builders[name]()
    return attack if name == "deepfool" else within_budget(model, in_fast_path(attack))


def run_attack(
    name: str,
    model: nn.Module,
    cfg: AttackConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    eps: float | None = None,
):
    """Attack ``images`` and report: ``(AttackReport, per-image correct, adversarials)``."""
    attack = make_attack(name, model, cfg, eps)
    adversarial = attack_in_batches(attack, images, labels, cfg.batch_size, device)
    report, still_correct = attack_report(model, images, adversarial, labels)
    return report, still_correct, adversarial


def attack_in_batches(
    attack: Attack,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Run ``attack`` over ``images`` (uint8 or [0,1] floats); returns float adversarials."""
    out = []
    for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        out.append(attack(as_input(x, device), y.to(device)).detach())
    return torch.cat(out)


def compare_attacks(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attacks: dict[str, Attack]
) -> list[dict]:
    """Each attack's success rate (%), median and mean L2 perturbation and seconds, on
    the images ``model`` classifies correctly before the attack: the DeepFool check's
    comparison of two implementations on the same model and images."""
    with torch.no_grad():
        right = model(images).argmax(dim=1) == labels
    rows = []
    for name, attack in attacks.items():
        start = time.perf_counter()
        adversarial = attack(images, labels)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            fooled = model(adversarial).argmax(dim=1) != labels
        l2 = (adversarial - images).flatten(1).norm(dim=1)[right]
        rows.append(
            {
                "implementation": name,
                "success rate (%)": 100 * fooled[right].float().mean().item(),
                "median L2": l2.median().item(),
                "mean L2": l2.mean().item(),
                "seconds": seconds,
            }
        )
    return rows
