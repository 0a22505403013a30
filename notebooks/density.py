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
# # Experiment 1: does an activation penalty make the code sparse without hurting accuracy?
#
# In this notebook we train the single-layer CNN of the paper's Section 4.1 with one
# value of the activation penalty λ, then measure two things on held-out test images:
# the **average density** of its hidden layer (the fraction of its 39,200 units that
# fire for an image) and its **accuracy**. The grid command runs this notebook once
# per λ; the results chapter sets the runs side by side.
#
# The loss is the paper's Eq. 5: a binary cross-entropy between the softmax output and
# the one-hot label, plus λ times the sum of the absolute hidden activations of each
# example, averaged over the batch. A larger λ should switch more units off.

# %% tags=["parameters"]
profile = "cpu"  # a file in params/: smoke, cpu or paper
activity_l1 = 1e-5  # lambda in Eq. 5
seed = 0  # initialization and shuffling; every seed sees the same images
data_path = None  # local CIFAR-10 copy, or None: use PAPERLIB_DATA or the profile

# %%
from paperlib import (
    DensityMetrics,
    SingleLayerCNN,
    accuracy,
    activation_maps,
    as_dict,
    as_input,
    bootstrap_ci,
    cell_result,
    data_identity,
    default_device,
    density_objective,
    hidden_density,
    load_profile,
    load_profile_data,
    make_cell,
    make_splits,
    now,
    pack_bits,
    predict,
    predicted_counts,
    provenance,
    seed_everything,
    train,
    training_curves,
    training_options,
    write_result,
)

# %%
started = now()
settings = load_profile(profile)
cell = make_cell("density", {"activity_l1": activity_l1, "seed": seed})
cfg = settings.density
device = default_device()
print(f"profile {settings.name}, cell {cell.cell_id}, device {device}")
print(cfg)

# %% [markdown]
# ## The data
#
# We draw seeded, class-balanced subsets: a training set, a validation set held out of
# CIFAR-10's training split (for the per-epoch curves), and a test set on which density
# and accuracy are measured. Every λ sees exactly the same images.

# %%
data = load_profile_data(settings, data_path)
splits = make_splits(
    data, train_size=cfg.train_size, val_size=cfg.val_size, test_size=cfg.test_size, seed=0
)
print(f"source: {splits.source}")
print(f"train {len(splits.train[1])}, validation {len(splits.val[1])}, test {len(splits.test[1])}")
if splits.note:
    print(f"note: {splits.note}")

# %% [markdown]
# ## The model
#
# One 5×5 convolution with 50 filters and no padding turns a 32×32 image into
# 50 maps of 28×28, that is 39,200 hidden units, followed by a ReLU and a linear layer
# to the ten classes. Inputs stay in [0, 1]; the model standardizes them itself.

# %%
seed_everything(cell.seed)
model = SingleLayerCNN()
n_params = sum(p.numel() for p in model.parameters())
print(f"{SingleLayerCNN.hidden_units:,} hidden units, {n_params:,} parameters")

# %% [markdown]
# ## Training
#
# Adam with Keras' default learning rate (the profile's `optimizer`), seeded
# initialization and shuffling. The recorded loss includes
# the penalty, so runs with a large λ start from a higher loss.

# %% mystnb={"figure": {"caption": "Training of this cell's single-layer CNN: loss (left; it includes the activity penalty) and accuracy (right) per epoch, on the training images and the held-out validation images."}}
history = train(
    model,
    splits.train,
    splits.val,
    objective=density_objective(cell.activity_l1),
    epochs=cfg.epochs,
    seed=cell.seed,
    device=device,
    **training_options(cfg),
)
fig = training_curves(history, title=f"single-layer CNN, lambda = {cell.activity_l1:g}")

# %% [markdown]
# ## Density and accuracy
#
# The average density is the fraction of hidden units above zero for each test image,
# averaged over the test images; the paper calls a code sparse when it lies in
# [0, 0.5]. Intervals are 95% bootstrap intervals over test images.

# %%
test_images, test_labels = splits.test
densities = hidden_density(model, test_images)
test_predictions = predict(model, test_images)
test_correct = test_predictions == test_labels
metrics = DensityMetrics(
    average_density=densities.mean().item(),
    average_density_ci=bootstrap_ci(densities.numpy()),
    test_accuracy=test_correct.float().mean().item(),
    test_accuracy_ci=bootstrap_ci(test_correct.numpy()),
    train_accuracy=accuracy(model, *splits.train),
    val_accuracy=accuracy(model, *splits.val),
    predicted_counts=predicted_counts(test_predictions),
)
for name, value in vars(metrics).items():
    print(f"{name:>20}: {value}")

# %% [markdown]
# What the hidden layer does with a few test images: the first eight of the 50 feature
# maps after the ReLU. Black is zero, that is, a unit that did not fire.

# %% mystnb={"figure": {"caption": "A few test images (left column) and the hidden feature maps of the first eight filters for each; a dark pixel is a hidden unit that stays at zero, which is what the density counts against."}}
examples = as_input(test_images[:4], device)
fig = activation_maps(model.features(examples).detach(), examples)

# %% [markdown]
# ## Saving the result
#
# The result is written atomically to `results/<profile>/density/<cell>.json`, with
# its config hash so that the grid can skip it next time, the per-image test outcomes
# for paired comparisons between λ values, the curves and the provenance.

# %%
result = cell_result(
    "density",
    settings,
    cell,
    data_identity(settings, data_path),
    metrics=metrics,
    provenance=provenance(device=device, seed=cell.seed, splits=splits, started=started),
    settings=as_dict(cfg),
    test_correct=pack_bits(test_correct.numpy()),
    history=history,
)
path = write_result(result)
print(f"wrote {path.relative_to(path.parents[3])}")

# %% [markdown]
# ## Summary
#
# This run trained the single-layer CNN with one λ and recorded its average density
# and its accuracy. On its own it says little: the claim is about how both change as λ
# grows, which the results page of this experiment answers across the whole grid.
