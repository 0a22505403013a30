# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: mystnb,tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiment 3: do regularized models explain themselves more stably?
#
# In this notebook we take one of experiment 2's clean-trained models (one
# architecture, one regularizer) and ask how much its attribution maps move when
# something small changes, following the paper's Section 4.3:
#
# - **Sliding patch (occlusion).** A gray patch slides over the image and we record how
#   much the predicted class's logit drops at each position. We compare the map made
#   with a 4×4 patch with the one made with a 2×2 patch, both at stride 2.
# - **Grad-CAM.** The gradient of the predicted class weights the feature maps of the
#   last layer whose maps are at least 4×4. We compare the map of the image with the
#   map of the same image slightly blurred (Gaussian, σ = 0.5).
#
# The change is the sum of squared differences (SSD) between the two maps, after
# min-max scaling each map to [0, 1]; lower means more stable. Both maps of a pair
# explain the class predicted for the original image.

# %% tags=["parameters"]
profile = "cpu"  # a file in params/: smoke, cpu or paper
arch = "vgg16"  # resnet50, mobilenet or vgg16
regularizer = "elastic"  # base, l1, l2 or elastic
penalty = 0.01  # c, the penalty's strength (the paper's 0.01); 0 for base
seed = 0  # selects experiment 2's model trained with this seed
data_path = None  # local CIFAR-10 copy, or None: use PAPERLIB_DATA or the profile

# %%
import math

import torch

from paperlib import (
    AttributionMetrics,
    StabilitySummary,
    accuracy,
    as_input,
    cell_result,
    clean_trained_model,
    data_identity,
    default_device,
    gaussian_blur,
    gradcam_figure,
    gradcam_map,
    gradcam_sensitivity,
    informative,
    load_profile,
    load_profile_data,
    make_cell,
    make_splits,
    now,
    occlusion_figure,
    occlusion_maps,
    predict,
    predicted_class,
    predicted_counts,
    provenance,
    rank_correlation,
    ssd,
    ssd_summary,
    stability_summary,
    stratified_indices,
    top_k_intersection,
    write_result,
)

# %%
started = now()
settings = load_profile(profile)
cell = make_cell(
    "attribution", {"arch": arch, "regularizer": regularizer, "penalty": penalty, "seed": seed}
)
cfg, train_cfg = settings.attribution, settings.adversarial
device = default_device()
data_id = data_identity(settings, data_path)
print(f"profile {settings.name}, cell {cell.cell_id}, device {device}")

# %% [markdown]
# ## The model
#
# We reuse the checkpoint experiment 2 saved for this architecture and regularizer. It
# is trained here, with experiment 2's settings, only if that checkpoint is missing.

# %%
data = load_profile_data(settings, data_path)
splits = make_splits(
    data,
    train_size=train_cfg.train_size,
    val_size=train_cfg.val_size,
    test_size=train_cfg.test_size,
    seed=0,
)  # experiment 2's data
model, _, model_key, reused = clean_trained_model(
    settings, cell, splits.train, splits.val, data_id, device
)
print(f"checkpoint {model_key} {'reused from experiment 2' if reused else 'trained here'}")

# %% [markdown]
# ## The images
#
# A seeded, class-balanced draw of test images (the paper uses 1,000 random ones). The
# same images serve every cell, so regularizers can be compared image by image.

# %%
picked = stratified_indices(data.test_labels, cfg.n_images, seed=1)
images = as_input(data.test_images[picked], device)
labels = data.test_labels[picked].to(device)
target = predicted_class(model, images)
print(
    f"{len(images)} images from {splits.source}; model accuracy on them "
    f"{(target == labels).float().mean().item():.3f}"
)
if splits.note:
    print(f"note: {splits.note}")

# %% [markdown]
# ## Occlusion maps for every patch size
#
# Occlusion runs batched: a whole batch of images is occluded at once, several patch
# positions per forward pass. The 2×2 map is the reference the others are compared
# with; the paper's pair is 4×4 against 2×2.


# %%
patches = sorted({cfg.patch, cfg.patch_small, *cfg.patch_sweep})
occlusion = {
    p: occlusion_maps(
        model, images, target, p, cfg.stride, cfg.batch_size, cfg.perturbations_per_eval
    )
    for p in patches
}
pair = occlusion[cfg.patch], occlusion[cfg.patch_small]
occlusion_ssd = informative(ssd(*pair), *pair)  # NaN where a map is flat: left out
occlusion_rank = informative(rank_correlation(*pair), *pair)
occlusion_topk = informative(top_k_intersection(*pair, cfg.top_k), *pair)
print(
    f"occlusion SSD ({cfg.patch}x{cfg.patch} vs {cfg.patch_small}x{cfg.patch_small}): "
    f"{occlusion_ssd.nanmean():.2f}, {occlusion_ssd.isnan().sum()} flat pairs left out"
)

# %% mystnb={"figure": {"caption": "Counterpart of the paper's Figure 4: each image, its occlusion map with the larger patch, that map over the image, and the map with the smaller patch; \u0394 is the SSD between the two maps, each scaled to [0, 1]."}}
fig = occlusion_figure(
    images[: cfg.figure_images],
    occlusion[cfg.patch][: cfg.figure_images],
    occlusion[cfg.patch_small][: cfg.figure_images],
    occlusion_ssd[: cfg.figure_images],
    cfg.patch,
    cfg.patch_small,
)

# %% [markdown]
# ## Grad-CAM on the original and the blurred image

# %%
gradcam = gradcam_map(model, images, target=target)
blurred_maps = {
    s: gradcam_map(model, gaussian_blur(images, s), target=target)
    for s in sorted({cfg.sigma, *cfg.sigma_sweep})
}
pair = gradcam, blurred_maps[cfg.sigma]
gradcam_ssd = informative(ssd(*pair), *pair)
gradcam_rank = informative(rank_correlation(*pair), *pair)
gradcam_topk = informative(top_k_intersection(*pair, cfg.top_k), *pair)
# How far the map moves under small random noise instead of a blur (captum's
# sensitivity_max): relative to the map's own norm, so a flat map is left out too.
gradcam_sensitivity_values = torch.cat(
    [
        gradcam_sensitivity(model, x, t, cfg.sensitivity_radius, cfg.sensitivity_samples)
        for x, t in zip(images.split(cfg.batch_size), target.split(cfg.batch_size), strict=True)
    ]
)
gradcam_sens = informative(gradcam_sensitivity_values, gradcam, gradcam)
print(
    f"Grad-CAM SSD (sigma {cfg.sigma}): {gradcam_ssd.nanmean():.2f}, "
    f"{gradcam_ssd.isnan().sum()} flat pairs left out"
)

# %% mystnb={"figure": {"caption": "Counterpart of the paper's Figure 5: each image with its Grad-CAM map, then the Gaussian-blurred image with its map; \u0394 is the SSD between the two maps, each scaled to [0, 1]."}}
fig = gradcam_figure(
    images[: cfg.figure_images],
    gaussian_blur(images[: cfg.figure_images], cfg.sigma),
    gradcam[: cfg.figure_images],
    blurred_maps[cfg.sigma][: cfg.figure_images],
    gradcam_ssd[: cfg.figure_images],
    cfg.sigma,
)

# %% [markdown]
# ## Beyond the paper: sweeps and a rank-based measure
#
# The SSD depends on how maps are scaled, so we also report the Spearman correlation
# between the two maps of each pair (1 = same ranking of pixels), the share of the
# top-k pixels both maps rank highest (Ghorbani et al. 2019), and, for Grad-CAM,
# captum's max-sensitivity: the largest relative change of the map under small random
# noise on the image (Yeh et al. 2019). Pairs with a flat map are left out of all of
# them and counted. And a single pair of
# settings says little, so we sweep the patch size (against the 2×2 reference) and the
# blur σ.


# %%
metrics = AttributionMetrics(
    occlusion_ssd=stability_summary(occlusion_ssd),
    gradcam_ssd=stability_summary(gradcam_ssd),
    occlusion_spearman=stability_summary(occlusion_rank),
    gradcam_spearman=stability_summary(gradcam_rank),
    occlusion_topk=stability_summary(occlusion_topk),
    gradcam_topk=stability_summary(gradcam_topk),
    gradcam_sensitivity=stability_summary(gradcam_sens),
    patch_sweep={
        str(p): ssd_summary(occlusion[p], occlusion[cfg.patch_small])
        for p in patches
        if p != cfg.patch_small
    },
    sigma_sweep={str(s): ssd_summary(gradcam, m) for s, m in blurred_maps.items()},
    accuracy_on_images=(target == labels).float().mean().item(),
    # On experiment 2's test images: the report tells a working model from a broken one.
    clean_accuracy=accuracy(model, *splits.test),
    predicted_counts=predicted_counts(predict(model, splits.test[0])),
)
{  # each measure's mean, and how many images a flat map left out
    name: (summary.mean, summary.left_out)
    for name, summary in vars(metrics).items()
    if isinstance(summary, StabilitySummary)
}

# %% [markdown]
# ## Saving the result
#
# Per-image values are kept so that the results page can compare regularizers on the
# same images with paired intervals.

# %%
result = cell_result(
    "attribution",
    settings,
    cell,
    data_id,
    metrics=metrics,
    provenance=provenance(device=device, seed=cell.seed, splits=splits, started=started),
    model_key=model_key,
    checkpoint_reused=reused,
    per_image={  # None: a flat map, left out
        name: [None if math.isnan(v) else round(v, 5) for v in values.cpu().tolist()]
        for name, values in (
            ("occlusion_ssd", occlusion_ssd),
            ("gradcam_ssd", gradcam_ssd),
            ("occlusion_spearman", occlusion_rank),
            ("gradcam_spearman", gradcam_rank),
            ("occlusion_topk", occlusion_topk),
            ("gradcam_topk", gradcam_topk),
            ("gradcam_sensitivity", gradcam_sens),
        )
    },
)
path = write_result(result)
print(f"wrote {path.relative_to(path.parents[3])}")

# %% [markdown]
# ## Summary
#
# This cell measured how far one model's occlusion maps move when the patch shrinks
# from 4×4 to 2×2, and how far its Grad-CAM maps move when the image is blurred. The
# results page sets the cells at the paper's strength beside the paper's Table 2, and
# lists the others.
