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
# # Checking our DeepFool against torchattacks'
#
# In this notebook we test the batched DeepFool that experiment 2 uses against the
# implementation in torchattacks, on the same undefended model and the same images.
# DeepFool is known for fooling practically every correctly classified image with a
# small L2 perturbation, so both should reach a success rate near 100% with similar
# perturbation sizes; ours should get there much faster, because it advances the whole
# batch at once where torchattacks computes a Jacobian image by image. The grid runs
# this check once per profile, after experiment 2, like any other cell.

# %% tags=["parameters"]
profile = "cpu"  # whose checkpoint to use: smoke, cpu or paper
arch = "vgg16"  # the clean-trained, unregularized model of this architecture
n_images = 40  # torchattacks' DeepFool is slow on a CPU: keep this small
data_path = None  # local CIFAR-10 copy, or None: use PAPERLIB_DATA or the profile

# %%
import pandas as pd
import torchattacks

from paperlib import (
    DeepfoolCheckMetrics,
    as_input,
    cell_result,
    clean_trained_model,
    compare_attacks,
    data_identity,
    deepfool_attack,
    default_device,
    load_profile,
    load_profile_data,
    make_cell,
    make_splits,
    now,
    predict,
    provenance,
    write_result,
)

# %%
started = now()
settings = load_profile(profile)
cfg = settings.adversarial
check = make_cell("deepfool_check", {"arch": arch, "n_images": n_images})
cell = make_cell("adversarial", {"arch": arch, "regularizer": "base", "seed": 0})
device = default_device()
data_id = data_identity(settings, data_path)
data = load_profile_data(settings, data_path)
splits = make_splits(
    data, train_size=cfg.train_size, val_size=cfg.val_size, test_size=check.n_images, seed=0
)

# %% [markdown]
# The model is experiment 2's clean-trained base model, reused from its checkpoint
# (trained here only if the grid has not run).

# %%
model, _, _, reused = clean_trained_model(settings, cell, splits.train, splits.val, data_id, device)
images = as_input(splits.test[0], device)
labels = splits.test[1].to(device)
correct_before = int((predict(model, images) == labels.cpu()).sum())
print(
    f"checkpoint {'reused' if reused else 'trained'}; {correct_before} of {len(images)} "
    "images classified correctly before the attack"
)

# %%
steps, overshoot = cfg.attacks.deepfool_steps, 0.02  # torchattacks' default overshoot
rows = compare_attacks(
    model,
    images,
    labels,
    {
        "paperlib (batched)": deepfool_attack(model, steps=steps, overshoot=overshoot),
        "torchattacks": torchattacks.DeepFool(model, steps=steps, overshoot=overshoot),
    },
)
comparison = pd.DataFrame(rows).round(3)
comparison

# %%
speedup = rows[1]["seconds"] / rows[0]["seconds"]
print(f"ours is {speedup:.1f}x faster on {device} for {len(images)} images")

# %%
result = cell_result(
    "deepfool_check",
    settings,
    check,
    data_id,
    metrics=DeepfoolCheckMetrics(
        implementations=rows, images=len(images), correct_before=correct_before
    ),
    provenance=provenance(device=device, seed=cell.seed, splits=splits, started=started),
)
path = write_result(result)
print(f"wrote {path.relative_to(path.parents[3])}")

# %% [markdown]
# ## Summary
#
# Both implementations use the same overshoot (0.02, torchattacks' default) and the
# same iteration cap here, so the success rates and L2 sizes should agree closely; the
# grid itself uses the profile's settings (ART's overshoot of 1e-6 by default).
