"""Attribution maps and their stability: occlusion, Grad-CAM, blur, SSD, rank correlation,
top-k intersection, sensitivity, and their summaries.

Maps are (N, 32, 32) tensors for (N, 3, 32, 32) images in [0, 1]. Before two maps are
compared they are min-max normalized to [0, 1] each, so that the SSD measures a change
of shape, not of scale (the paper does not say how it scaled its maps).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.memory import images_per_pass, rows_per_pass
from paperlib.core.records import StabilitySummary
from paperlib.core.stats import bootstrap_ci

GRAY = 0.5  # occlusion baseline: a mid-gray patch, in pixel units


@torch.no_grad()
def predicted_class(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(images).argmax(dim=1)


def occlusion_map(
    model: nn.Module,
    images: torch.Tensor,
    patch: int,
    stride: int,
    target: torch.Tensor | None = None,
    perturbations_per_eval: int = 32,
) -> torch.Tensor:
    """Sliding gray patch (Zeiler and Fergus 2014) with captum's ``Occlusion``.

    Each pixel's value is the mean drop in the target logit over the patch positions
    that cover it, summed over the colour channels. The whole batch is occluded at
    once, ``perturbations_per_eval`` patch positions per forward pass; on CUDA fewer
    images and positions per pass where the memory budget asks (``memory.rows_per_pass``),
    on a CPU always these. The target is the predicted class unless given.
    """
    model.eval()
    target = predicted_class(model, images) if target is None else target
    rows = rows_per_pass(model, images, backward=False)
    if rows is None or len(images) * perturbations_per_eval <= rows:
        return _occlusion(model, images, patch, stride, target, perturbations_per_eval)
    per_eval = min(perturbations_per_eval, rows)
    per_pass = images_per_pass(rows, per_eval, len(images))
    return torch.cat(
        [
            _occlusion(model, x, patch, stride, t, per_eval)
            for x, t in zip(images.split(per_pass), target.split(per_pass), strict=True)
        ]
    )


def _captum():
    """captum, imported on first use so that importing paperlib stays light.

    captum imports ``tqdm.auto`` for progress bars this project never turns on. In a
    notebook kernel without ipywidgets that import warns "IProgress not found": in every
    executed attribution notebook, about a bar that is never drawn."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import captum.attr
        import captum.metrics
    return captum


def _occlusion(model, images, patch, stride, target, perturbations_per_eval) -> torch.Tensor:
    occlusion = _captum().attr.Occlusion(model)
    maps = occlusion.attribute(
        images,
        sliding_window_shapes=(3, patch, patch),
        strides=(3, stride, stride),
        baselines=GRAY,
        target=target,
        perturbations_per_eval=perturbations_per_eval,
    )
    return maps.sum(dim=1).detach()


def occlusion_maps(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    patch: int,
    stride: int,
    batch_size: int,
    perturbations_per_eval: int = 32,
) -> torch.Tensor:
    """``occlusion_map`` over many images, ``batch_size`` at a time (its memory grows
    with the batch times ``perturbations_per_eval``)."""
    return torch.cat(
        [
            occlusion_map(model, x, patch, stride, t, perturbations_per_eval)
            for x, t in zip(images.split(batch_size), target.split(batch_size), strict=True)
        ]
    )


def gradcam_map(
    model: nn.Module, images: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) on ``model.gradcam_layer``, upsampled to 32x32.

    The layer is the last one whose feature map is at least 4x4; each architecture
    names its own. ReLU on the map, bilinear upsampling. The target is the predicted
    class unless given. All images go in one pass, or on CUDA as many passes as the
    memory budget asks (``memory.rows_per_pass``); each image's map is its own.
    """
    model.eval()
    target = predicted_class(model, images) if target is None else target
    per_pass = images_per_pass(rows_per_pass(model, images), 1, len(images))
    if per_pass >= len(images):
        return _gradcam(model, images, target)
    pairs = zip(images.split(per_pass), target.split(per_pass), strict=True)
    return torch.cat([_gradcam(model, x, t) for x, t in pairs])


def _gradcam(model: nn.Module, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    attr = _captum().attr
    cam = attr.LayerGradCam(model, model.gradcam_layer).attribute(
        images, target=target, relu_attributions=True
    )
    size = images.shape[-2:]
    return attr.LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")[:, 0].detach()


def gaussian_blur(images: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """Gaussian blur with a kernel covering +-3 sigma; sigma -> 0 is the identity."""
    if sigma <= 0:
        return images.clone()
    # Written out rather than taken from torchvision, whose import costs every notebook
    # kernel about two seconds; it matches torchvision's gaussian_blur (a test checks).
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def normalize_map(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map to [0, 1]; a constant map becomes all zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    return ((flat - low) / span.clamp_min(1e-12)).view_as(maps)


def ssd(map_a: torch.Tensor, map_b: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared differences between normalized maps."""
    diff = normalize_map(map_a) - normalize_map(map_b)
    return diff.pow(2).flatten(1).sum(dim=1)


def top_k_intersection(map_a: torch.Tensor, map_b: torch.Tensor, k: int) -> torch.Tensor:
    """Per-image share of the ``k`` most important pixels of ``map_a`` that are also
    among the ``k`` most important of ``map_b`` (Ghorbani et al. 2019): 1 when the two
    maps point at the same pixels, whatever their scale."""
    top_a = map_a.flatten(1).topk(k, dim=1).indices
    top_b = map_b.flatten(1).topk(k, dim=1).indices
    shared = (top_a.unsqueeze(2) == top_b.unsqueeze(1)).any(dim=2).sum(dim=1)
    return shared.float() / k


def gradcam_sensitivity(
    model: nn.Module, images: torch.Tensor, target: torch.Tensor, radius: float, samples: int
) -> torch.Tensor:
    """captum's ``sensitivity_max`` (Yeh et al. 2019) of Grad-CAM: per image, the
    largest change of its map, relative to the map's norm, over ``samples`` random
    perturbations of the image in an L-inf ball of ``radius`` (the target class fixed).
    Its ``len(images) * samples`` rows are split as ``gradcam_map`` splits its own."""
    sensitivity_max = _captum().metrics.sensitivity_max
    with torch.enable_grad():
        return sensitivity_max(
            # captum passes and expects tuples of tensors, one per input
            lambda x, target: (gradcam_map(model, x[0] if isinstance(x, tuple) else x, target),),
            images,
            perturb_radius=radius,
            n_perturb_samples=samples,
            target=target,
        ).detach()


# A map whose values span less than this is constant, or float noise around a constant:
# the maps of a model that predicts one class whatever the image. Working models' maps
# span logit differences (occlusion) or activations (Grad-CAM) of order 1e-2 and more.
FLAT_RANGE = 1e-6


def flat_maps(maps: torch.Tensor) -> torch.Tensor:
    """Which maps carry no attribution: constant, or spanning less than ``FLAT_RANGE``."""
    flat = maps.flatten(1)
    return (flat.max(dim=1).values - flat.min(dim=1).values) <= FLAT_RANGE


def informative(values: torch.Tensor, map_a: torch.Tensor, map_b: torch.Tensor) -> torch.Tensor:
    """Per-image ``values`` comparing ``map_a`` with ``map_b``, NaN where either map is
    flat. Min-max scaling turns a flat map into all zeros or stretches its float noise
    over the whole range, so its SSD or rank correlation says nothing about stability;
    such images are left out and counted, never averaged in."""
    return values.masked_fill((flat_maps(map_a) | flat_maps(map_b)).to(values.device), float("nan"))


def stability_summary(values: torch.Tensor) -> StabilitySummary:
    """Mean, spread and bootstrap interval of per-image ``values`` over the images whose
    maps were not flat (NaN: left out), and how many were left out."""
    kept = values[~values.isnan()].cpu()
    return StabilitySummary(
        mean=kept.mean().item() if len(kept) else None,
        std=kept.std().item() if len(kept) > 1 else None,
        ci=bootstrap_ci(kept.numpy()) if len(kept) else (None, None),
        left_out=int(values.isnan().sum()),
    )


def ssd_summary(map_a: torch.Tensor, map_b: torch.Tensor) -> StabilitySummary:
    """``stability_summary`` of the per-image SSD between two sets of maps."""
    return stability_summary(informative(ssd(map_a, map_b), map_a, map_b))


def rank_correlation(map_a: torch.Tensor, map_b: torch.Tensor) -> torch.Tensor:
    """Per-image Spearman correlation between two maps (tied pixels share their rank).

    Unlike the SSD it does not depend on how the maps are scaled. A constant map has
    no ranking; its correlation is 0.
    """
    ranks = [average_ranks(m.flatten(1).cpu().double()) for m in (map_a, map_b)]
    a, b = (r - r.mean(dim=1, keepdim=True) for r in ranks)
    return ((a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)).float()


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Rank each row from 1 (smallest); tied values share the mean of their ranks.

    The same as SciPy's ``rankdata(values, axis=1)`` (a test checks), without importing
    SciPy, which costs every notebook kernel over a second.
    """
    order = values.argsort(dim=1, stable=True)
    ordered = values.gather(1, order)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    tie_group = starts.cumsum(dim=1) - 1  # index of each sorted value's run of equal values
    position = torch.arange(1, values.shape[1] + 1, dtype=torch.float64).expand_as(ordered)
    group_sum = torch.zeros_like(position).scatter_add_(1, tie_group, position)
    group_size = torch.zeros_like(position).scatter_add_(1, tie_group, torch.ones_like(position))
    sorted_ranks = (group_sum / group_size.clamp_min(1)).gather(1, tie_group)
    return torch.empty_like(sorted_ranks).scatter_(1, order, sorted_ranks)
