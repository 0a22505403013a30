"""What each cell of a profile's grid does, counted in image passes before it runs.

A stage is a forward pass or a forward and backward pass of so many images (converted
to FLOPs with ``paperlib.core.cost``), the optimizer steps it takes, and, on a GPU,
the events that cost time without arithmetic: the convolutions cuDNN tunes and the
penalty's kernel launches. Each stage names the kind of pass (``method``) and the
precision whose rate prices it (``paperlib.run.rates``). The counts follow the cell
notebooks; where they depend on the models (attacks that stop early), the assumptions
are named constants, which the plan lists as inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from paperlib.core.cost import forward_flops, gradient_flops, layer_counts
from paperlib.core.registry import ATTACKS
from paperlib.core.settings import AdversarialConfig, AttributionConfig, DensityConfig
from paperlib.run.profiles import load_grid, load_profile

# Assumptions about attacks that stop early (on models that have not been made robust):
DEEPFOOL_STEPS = 3  # DeepFool steps per image until the label flips
SURVIVING = 0.1  # share of images left for AutoAttack's components after APGD-CE
FAB_PASSES_PER_STEP = 2  # FAB-T needs the gradients of two logits per step
# The kernel penalty visits the penalized tensors one by one: operators per tensor,
# forward and backward, as torch.profiler counts them on a CPU (L1: abs, sum, the
# running sum, then sign and two products; L2 with pow and its copies), each a kernel
# launch on CUDA, too small to hide behind the convolutions.
KERNELS_PER_TENSOR = {"base": 0, "l1": 7, "l2": 8, "elastic": 15}
EVAL_BATCH = 1000  # train() validates in batches of this many (a shape cuDNN tunes too)


@dataclass(frozen=True)
class Stage:
    experiment: str
    stage: str
    arch: str
    width: float
    forward: float = 0.0  # forward passes of one image
    gradient: float = 0.0  # forward and backward passes of one image
    steps: float = 0.0  # optimizer steps (each at least GPU_STEP_FLOOR_S on a GPU)
    method: str = "training"  # the kind of pass whose rate prices it (rates.MEASURED_AS)
    precision: str = "bf16"  # "bf16" (autocast on CUDA) or "fp32"
    batch_size: int | None = None  # of a training stage: the rate is looked up at it
    tuned: float = 0.0  # convolution x batch-shape pairs cuDNN tunes (on a GPU)
    launches: float = 0.0  # the penalty's kernel launches (on a GPU)
    assumes: tuple[str, ...] = ()  # the ASSUMPTIONS its work count rests on

    @property
    def flops(self) -> float:
        return self.forward * forward_flops(self.arch, self.width) + self.gradient * (
            gradient_flops(self.arch, self.width)
        )

    @property
    def fixed(self) -> bool:
        """Not arithmetic: autotuning or kernel launches, priced per event."""
        return self.method == "fixed"


def _shapes(n: int, batch: int) -> set[int]:
    """The batch sizes ``n`` images come in: the full batch and the short last one."""
    return {min(n, batch), n % batch} - {0}


def _autotuning(experiment, arch, width, shapes: set[int]) -> Stage:
    convolutions, _ = layer_counts(arch, width)
    return Stage(
        experiment, "autotuning", arch, width, method="fixed", tuned=convolutions * len(shapes)
    )


def density_stages(cfg: DensityConfig) -> list[Stage]:
    steps = cfg.epochs * ceil(cfg.train_size / cfg.batch_size)
    shapes = _shapes(cfg.train_size, cfg.batch_size) | _shapes(cfg.val_size, EVAL_BATCH)
    return [
        Stage(
            "density",
            "training",
            "single_layer",
            1.0,
            forward=cfg.epochs * cfg.val_size,
            gradient=cfg.epochs * cfg.train_size,
            steps=steps,
            batch_size=cfg.batch_size,
        ),
        Stage(
            "density",
            "evaluation",
            "single_layer",
            1.0,
            forward=2 * cfg.test_size + cfg.train_size,
            method="forward",
            precision="fp32",
        ),
        _autotuning("density", "single_layer", 1.0, shapes),
    ]


def _deepfool_passes(cfg: AdversarialConfig) -> float:
    """Gradient passes per image: each step a forward and a backward pass over one row
    per candidate class (our batched DeepFool), plus the clean pass (about a third)."""
    a = cfg.attacks
    return min(DEEPFOOL_STEPS, a.deepfool_steps) * a.deepfool_candidates + 1 / 3


def attack_passes(cfg: AdversarialConfig) -> dict[str, float]:
    """Gradient passes per attacked image, for each of the paper's attacks."""
    return {"fgsm": 1.0, "pgd": float(cfg.attacks.pgd_steps), "deepfool": _deepfool_passes(cfg)}


def _verdict_passes(cfg: AdversarialConfig) -> float:
    """float32 forward passes per attacked image that decide what counts as fooled or
    correct: each attack report predicts the clean and the attacked images (the three
    attacks on the clean model, nine on the fine-tuned ones, FGSM and PGD at every
    sweep radius), 22 single predictions (transfer, placebo, cross-attack transfer,
    audit), and about four per AutoAttack radius."""
    radii = len({*cfg.sweep_eps, *cfg.endpoint_eps, cfg.standard_eps})
    reports = 3 + 9 + 2 * radii
    return 2 * reports + 22 + 4 * len({*cfg.endpoint_eps, cfg.standard_eps})


def adversarial_stages(cfg: AdversarialConfig, arch: str, regularizer: str = "base") -> list[Stage]:
    width, a, n = cfg.width[arch], cfg.attacks, cfg.eval_size
    passes = attack_passes(cfg)
    searching = passes["fgsm"] + passes["pgd"]  # in bf16; DeepFool in float32
    autoattack = {
        "apgd-ce": a.autoattack_steps,
        "apgd-t": SURVIVING * 9 * a.autoattack_steps,
        "fab-t": SURVIVING * 9 * a.autoattack_steps * FAB_PASSES_PER_STEP,
    }
    square = SURVIVING * a.square_queries if "square" in a.autoattack else 0.0
    radii = len({*cfg.sweep_eps, *cfg.endpoint_eps, cfg.standard_eps})
    endpoints = len({*cfg.endpoint_eps, cfg.standard_eps})  # AutoAttack runs at each

    def stage(name, **work):
        return Stage("adversarial", name, arch, width, **work)

    def attacks(name, images):
        return [
            stage(name, gradient=images * searching, method="pgd"),
            stage(
                name,
                gradient=images * passes["deepfool"],
                method="deepfool",
                precision="fp32",
                assumes=("DeepFool steps",),
            ),
        ]

    mixed = 2 * cfg.adv_train_size  # clean images and their adversarial versions
    finetunes = len(ATTACKS) + 1  # one per attack, and the placebo
    steps = cfg.epochs * ceil(cfg.train_size / cfg.batch_size)
    finetune_steps = finetunes * cfg.finetune_epochs * ceil(mixed / cfg.batch_size)
    _, tensors = layer_counts(arch, width)
    shapes = (
        _shapes(cfg.train_size, cfg.batch_size)
        | _shapes(cfg.val_size, EVAL_BATCH)
        | _shapes(mixed, cfg.batch_size)
    )
    return [
        stage(
            "training",
            forward=cfg.epochs * cfg.val_size,
            gradient=cfg.epochs * cfg.train_size,
            steps=steps,
            batch_size=cfg.batch_size,
        ),
        stage(
            "clean evaluation", forward=2 * cfg.test_size + n, method="forward", precision="fp32"
        ),
        *attacks("attacks on the clean model", n),
        *attacks("crafting training images", cfg.adv_train_size),
        stage(
            "fine-tuning",
            forward=finetunes * cfg.finetune_epochs * cfg.val_size,
            gradient=finetunes * cfg.finetune_epochs * mixed,
            steps=finetune_steps,
            batch_size=cfg.batch_size,
        ),
        # every fine-tuned model against every attack, white-box
        *attacks("cross-attack matrix", 3 * n),
        stage(
            "eps sweep",
            gradient=radii * n * (1 + a.standard_steps * a.standard_restarts),
            method="pgd",
        ),
        stage(
            "AutoAttack",
            gradient=endpoints * n * sum(v for k, v in autoattack.items() if k in a.autoattack),
            method="apgd",
            assumes=("AutoAttack survivors", "FAB-T passes"),
        ),
        stage(
            "AutoAttack",
            forward=endpoints * n * square,
            method="forward",
            assumes=("AutoAttack survivors",),
        ),
        stage("verdicts", forward=n * _verdict_passes(cfg), method="forward", precision="fp32"),
        _autotuning("adversarial", arch, width, shapes),
        stage(
            "penalty kernels",
            method="fixed",
            launches=(steps + finetune_steps) * tensors * KERNELS_PER_TENSOR[regularizer],
        ),
    ]


def attribution_stages(cfg: AttributionConfig, arch: str, width: float) -> list[Stage]:
    patches = {cfg.patch, cfg.patch_small, *cfg.patch_sweep}
    positions = sum(((32 - p) // cfg.stride + 1) ** 2 + 1 for p in patches)
    blurs = len({cfg.sigma, *cfg.sigma_sweep})
    return [
        Stage(
            "attribution",
            "occlusion",
            arch,
            width,
            forward=cfg.n_images * positions,
            method="occlusion",
            precision="fp32",
        ),
        Stage(
            "attribution",
            "Grad-CAM",
            arch,
            width,
            forward=cfg.n_images,
            gradient=cfg.n_images * (1 + blurs + 1 + cfg.sensitivity_samples),
            method="gradcam",
            precision="fp32",
        ),
    ]


def profile_stages(profile_name: str) -> list[tuple[str, Stage]]:
    """(cell id, stage) for every cell of every experiment of the profile's grid."""
    profile = load_profile(profile_name)
    rows = []
    for cell in load_grid("density", profile_name):
        rows += [(cell.cell_id, s) for s in density_stages(profile.density)]
    for cell in load_grid("adversarial", profile_name):
        cfg = profile.adversarial
        rows += [(cell.cell_id, s) for s in adversarial_stages(cfg, cell.arch, cell.regularizer)]
        attribution = attribution_stages(profile.attribution, cell.arch, cfg.width[cell.arch])
        rows += [(cell.cell_id, s) for s in attribution]
    return rows
