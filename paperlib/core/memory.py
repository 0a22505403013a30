"""How many rows one pass may hold: a memory budget per device.

A row is one image in one pass of a network. Some stages multiply their images: DeepFool
runs each image with its candidate classes (500 x 10 rows at paper scale), occlusion
each image under many patch positions (250 x 64), Grad-CAM's sensitivity each image
under its noise samples (250 x 10), and Grad-CAM maps 1,000 images at once. ResNet-50
at full width keeps about 29 MB per row for its backward pass, so those passes would
need far more memory than one GPU has.

On CUDA each such pass is split to fit a budget: the GPU's memory shared among the cells
that run on it, less headroom. On a CPU there is no budget and nothing is split. A CPU
run's numbers depend on its batch shapes, and CPU results made before the budget must
match those made after it exactly.

The bytes per row are measured, not guessed: ``python -c "import paperlib.core.memory as m;
m.print_measured_table()"`` measures them on a CPU and prints ``ROW_BYTES``.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from paperlib.core.models import MODELS, make_model
from paperlib.core.settings import CELLS_PER_GPU_ENV, Profile

# The share of each cell's part of the GPU that its rows may fill. The rest holds the
# CUDA context, the weights, their gradients and optimizer state, cuDNN's workspaces
# and what the caching allocator holds but cannot reuse.
ACTIVATION_SHARE = 0.7


@dataclass(frozen=True)
class RowBytes:
    """What one float32 row of a network costs in memory, measured on a CPU."""

    saved: int  # bytes its forward pass keeps for the backward pass
    forward: int  # the most bytes alive at once in a forward pass without gradients
    params: int  # parameters of the network measured; a larger one is measured again

    @property
    def backward(self) -> int:
        """Bytes for a forward and backward pass: what is kept, plus one forward pass's
        working set for the gradients in flight (a layer's backward holds the gradients
        of its input and output, as its forward holds the two activations)."""
        return self.saved + self.forward


# The grid's networks at width 1.0, the paper profile's widths. A narrower network keeps
# fewer channels, so these figures bound it too. Measured on a CPU (torch 2.14,
# channels-last, 32x32 inputs) by print_measured_table(); a test measures them again.
# bf16 passes keep less.
ROW_BYTES = {
    "resnet50": RowBytes(saved=25513984, forward=3420160, params=23520842),
    "mobilenet": RowBytes(saved=3309568, forward=667648, params=3217226),
    "vgg16": RowBytes(saved=2603008, forward=536576, params=15249354),
    "resnet26": RowBytes(saved=15683584, forward=3420160, params=13958986),
}


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def saved_bytes(model: nn.Module, rows: torch.Tensor) -> int:
    """Bytes of the distinct tensors that one forward pass of ``rows`` saves for the
    backward pass (tensors saved by several operations count once), weights included."""
    kept = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return t

    rows = rows.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(rows)
    torch.autograd.grad(logits.sum(), rows)  # the pass a row makes, though only its graph counts
    return sum(kept.values())


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the storages that the operations run under it create and that
    are still referenced, and the most at once. Without gradients every holder of a
    tensor is a Python object (views share their base's storage), so every tensor is
    counted while it lives; workspaces inside a library's kernels are not tensors and
    are left to the budget's headroom."""

    def __init__(self):
        super().__init__()
        self.holders: dict[int, dict[int, weakref.ref]] = {}
        self.sizes: dict[int, int] = {}
        self.now = self.peak = 0

    def _release(self, key: int, ref: weakref.ref) -> None:
        holders = self.holders.get(key)
        if holders is not None and holders.pop(id(ref), None) is not None and not holders:
            self.now -= self.sizes.pop(key)
            del self.holders[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # A view of, or a write into, a tensor made before (a weight) allocates nothing.
        before = {
            a.untyped_storage().data_ptr()
            for a in tree_leaves((args, kwargs))
            if isinstance(a, torch.Tensor)
        } - self.holders.keys()
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in before:
                key = t.untyped_storage().data_ptr()
                if key not in self.holders:
                    self.holders[key], self.sizes[key] = {}, t.untyped_storage().nbytes()
                    self.now += self.sizes[key]
                    self.peak = max(self.peak, self.now)
                ref = weakref.ref(t, lambda r, key=key: self._release(key, r))
                self.holders[key][id(ref)] = ref
        return out


@torch.no_grad()
def forward_peak_bytes(model: nn.Module, rows: torch.Tensor) -> int:
    """The most bytes alive at once while ``model`` classifies ``rows``, a copy of the
    rows included (the weights, made before, are not)."""
    with _LiveBytes() as live:
        model(rows.clone(memory_format=torch.channels_last))
    return live.peak


def measure_row_bytes(model: nn.Module, image_shape: tuple[int, ...] = (3, 32, 32)) -> RowBytes:
    """``RowBytes`` of ``model`` on its device, in float32, measured at two and four rows:
    the difference is what one row adds, the rest (weights, buffers) being the same at
    both. ``model`` is measured in eval mode, as attacks and attributions run it, and left
    in the mode it was in."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.autocast(device.type, enabled=False):
            sizes = {n: torch.rand(n, *image_shape, device=device) for n in (2, 4)}
            saved = {n: saved_bytes(model, x) for n, x in sizes.items()}
            forward = {n: forward_peak_bytes(model, x) for n, x in sizes.items()}
    finally:
        model.train(was_training)
    return RowBytes(
        saved=(saved[4] - saved[2]) // 2,
        forward=(forward[4] - forward[2]) // 2,
        params=parameter_count(model),
    )


def row_bytes(model: nn.Module, image_shape: tuple[int, ...]) -> RowBytes:
    """The measured ``ROW_BYTES`` of ``model``'s architecture, or, for another network or
    a wider one, its own figures measured now."""
    arch = next((a for a, cls in MODELS.items() if type(model) is cls), None)
    known = ROW_BYTES.get(arch)
    if known is not None and parameter_count(model) <= known.params:
        return known
    return measure_row_bytes(model, image_shape)


def cells_sharing_the_gpu() -> int:
    """Cells that run at once on this process's GPU: the grid tells each worker; a cell
    run on its own has the GPU to itself."""
    return int(os.environ.get(CELLS_PER_GPU_ENV, "1"))


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device``; None on a CPU, where passes are never split."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory


def activation_budget(device: torch.device) -> int | None:
    """Bytes that the rows of one pass may fill on ``device``; None: no budget (a CPU)."""
    total = device_memory(device)
    if total is None:
        return None
    return int(total * ACTIVATION_SHARE / cells_sharing_the_gpu())


def rows_per_pass(model: nn.Module, images: torch.Tensor, backward: bool = True) -> int | None:
    """How many rows of ``images``' shape one pass of ``model`` may hold on their device
    (at least one); None on a CPU, where a pass holds whatever its caller gives it."""
    budget = activation_budget(images.device)
    if budget is None:
        return None
    cost = row_bytes(model, tuple(images.shape[1:]))
    return max(1, budget // (cost.backward if backward else cost.forward))


def images_per_pass(rows: int | None, rows_per_image: int, images: int) -> int:
    """Images one pass may take when each brings ``rows_per_image`` rows: all of them
    without a budget (``rows`` None), otherwise as many as fit, and at least one."""
    if rows is None:
        return images
    return max(1, min(images, rows // rows_per_image))


# --- the paper profile's cells, stage by stage ------------------------------------------

EVALUATION_ROWS = 1000  # images per pass of metrics.predict and train.evaluate
IMAGE_BYTES = 3 * 32 * 32  # one CIFAR-10 image in uint8
# Assumed, not measured (no GPU has run this code yet): a CUDA context with cuDNN and
# cuBLAS loaded takes 0.5 to 1 GiB of the GPU in each process that uses it.
CUDA_CONTEXT_BYTES = 1 << 30


@dataclass(frozen=True)
class Stage:
    """One kind of pass a cell makes, and the rows it brings without a budget."""

    name: str
    rows: int  # rows the pass holds when nothing splits it
    together: int  # rows a split keeps together: an image's candidates or patch positions
    backward: bool  # whether the pass keeps its activations for a backward pass
    budgeted: bool  # whether the budget splits it (training batches stay as set)
    experiments: tuple[str, ...] = ("adversarial", "attribution")  # whose cells make it


def cell_stages(profile: Profile) -> list[Stage]:
    """The passes of an adversarial and an attribution cell of ``profile``, as the
    notebooks make them. Training runs in bf16 on CUDA and is counted in float32 here,
    an upper bound, as are the attacks that run under bf16."""
    adv, attr = profile.adversarial, profile.attribution
    attacks, candidates = adv.attacks.batch_size, adv.attacks.deepfool_candidates
    per_eval, samples = attr.perturbations_per_eval, attr.sensitivity_samples
    # Grad-CAM splits the sensitivity's noisy copies row by row, like any other images.
    adversarial, attribution = ("adversarial",), ("attribution",)
    return [
        Stage("training and fine-tuning", adv.batch_size, 1, True, False),
        Stage("evaluation", EVALUATION_ROWS, 1, False, False),
        Stage("FGSM, PGD and AutoAttack", attacks, 1, True, True, adversarial),
        Stage(
            "DeepFool (also crafting)", attacks * candidates, candidates, True, True, adversarial
        ),
        Stage("predicted classes", attr.n_images, 1, False, False, attribution),
        Stage("Grad-CAM", attr.n_images, 1, True, True, attribution),
        Stage("Grad-CAM sensitivity", attr.batch_size * samples, 1, True, True, attribution),
        Stage("occlusion", attr.batch_size * per_eval, per_eval, False, True, attribution),
    ]


def cell_fixed_bytes(profile: Profile, params: int) -> int:
    """What a cell holds on the GPU whatever its stage: the CUDA context, four float32
    copies of the parameters (the weights, their gradients, SGD's momentum and the
    fine-tuned copy) and the largest training set on the device (uint8 images, or the
    fine-tuning set of clean plus crafted images as floats)."""
    adv = profile.adversarial
    data = max(adv.train_size * IMAGE_BYTES, 2 * adv.adv_train_size * IMAGE_BYTES * 4)
    return CUDA_CONTEXT_BYTES + 4 * 4 * params + data


def stage_peaks(profile: Profile, arch: str, budget: int | None) -> dict[str, int]:
    """Bytes one cell of ``arch`` holds at its peak in each stage, with the rows that an
    activation ``budget`` allows (None: every pass unsplit, as before the budget)."""
    cost = ROW_BYTES[arch]
    return _pass_bytes(cell_stages(profile), cost, cell_fixed_bytes(profile, cost.params), budget)


def _pass_bytes(stages: list, cost: RowBytes, fixed: int, budget: int | None) -> dict[str, int]:
    """Each stage's peak: the ``fixed`` bytes plus its pass's rows at ``cost`` a row,
    as many rows as an activation ``budget`` allows (None: the pass unsplit)."""
    peaks = {}
    for stage in stages:
        per_row = cost.backward if stage.backward else cost.forward
        rows = stage.rows
        if stage.budgeted and budget is not None and budget // per_row < rows:
            # Whole groups, at least one (occlusion could split even one image's
            # positions; counting a whole group bounds it).
            rows = max(1, budget // per_row // stage.together) * stage.together
        peaks[stage.name] = fixed + rows * per_row
    return peaks


def cpu_cell_peak(profile: Profile, experiment: str, arch: str) -> tuple[str, int]:
    """The largest pass of an ``experiment`` cell of ``arch`` on a CPU, where no pass is
    split, and the bytes the cell holds in it: the pass's rows, measured now at the
    profile's width, plus four copies of the parameters and the training images.

    An upper bound, as on the GPU: a ResNet-26 cell of the study profile was measured
    at 10 GB resident in DeepFool, where this gives 12."""
    width = profile.adversarial.width.get(arch, 1.0)
    model = make_model(arch, width).to(memory_format=torch.channels_last)
    cost = measure_row_bytes(model)
    fixed = cell_fixed_bytes(profile, cost.params) - CUDA_CONTEXT_BYTES
    stages = [stage for stage in cell_stages(profile) if experiment in stage.experiments]
    peaks = _pass_bytes(stages, cost, fixed, budget=None)
    name = max(peaks, key=peaks.get)
    return name, peaks[name]


def print_measured_table() -> None:
    """Measure every architecture at width 1.0 on this CPU and print ``ROW_BYTES``."""
    torch.manual_seed(0)
    print("ROW_BYTES = {")
    for arch in MODELS:
        model = make_model(arch).to(memory_format=torch.channels_last)
        cost = measure_row_bytes(model)
        print(
            f'    "{arch}": RowBytes(saved={cost.saved}, forward={cost.forward}, '
            f"params={cost.params}),"
        )
    print("}")
