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
# # Performance
#
# In this notebook we measure how fast the pipeline runs, and where the time goes. The
# first part reads the reports that `make bench` (`python -m benchmarks`) writes to
# `benchmarks/results/`: each one times our implementation and a plain baseline in the
# same run, on the same inputs and device, so the ratios hold even where the absolute
# figures do not carry over to other hardware. The second part adds up how long each profile's grids took,
# from the results this book was built from.

# %% tags=["parameters"]
profiles = "cpu"  # comma-separated profiles whose grid times to show
benchmarks = "../benchmarks/results"  # make bench's reports, relative to notebooks/

# %%
from pathlib import Path

from IPython.display import Markdown, display

from paperlib import (
    gpu_check_table,
    hardware_table,
    load_recipe_probes,
    load_recipes,
    load_reports,
    plan_inputs,
    plan_vs_measured,
    section_table,
    stage_table,
    training_figure,
    utilisation_table,
)

names = [p.strip() for p in profiles.split(",") if p.strip()]
reports = load_reports(Path(benchmarks))
if not reports:
    display(Markdown("No benchmark report yet: run `make bench`, then rebuild the book."))

# %% [markdown]
# ## Where the benchmarks ran

# %%
hardware_table(reports) if reports else None

# %% [markdown]
# ## Training throughput
#
# One epoch of crop-and-flip training per architecture, at the width shown. Ours keeps
# the uint8 images on the device and augments whole batches there; the baseline is the
# usual torchvision pipeline of PIL images, per-image transforms and a `DataLoader`.

# %% mystnb={"figure": {"caption": "Training images per second for each benchmark report and architecture, the baseline's beside ours; the label over each pair is our speed-up."}}
training = section_table(reports, "training") if reports else None
fig = training_figure(training) if reports else None

# %%
columns = ["report", "arch", "width", "ours_img_per_s", "baseline_img_per_s", "speedup"]
training[columns].set_index(["report", "arch"]).round(2) if not training.empty else None

# %% [markdown]
# On a CPU both loops spend their time in the model's arithmetic, so ratios near 1 are
# what to expect there. The on-device path is built for GPUs, where per-image PIL
# transforms on the host can leave the device waiting.

# %%
if reports and not any(name.startswith("cuda") for name in reports):
    display(Markdown("No GPU report yet: run `make bench` on a CUDA machine to add one."))

# %% [markdown]
# ## DeepFool and occlusion
#
# DeepFool: our batched implementation against torchattacks' `DeepFool`, which attacks
# one image at a time, with the share of correctly classified images each one fools.
# Occlusion: our batched call of captum's `Occlusion` against one call per image with
# one perturbation per forward pass (captum's default).

# %%
section_table(reports, "deepfool").set_index("report").round(3) if reports else None

# %%
section_table(reports, "occlusion").set_index("report").round(3) if reports else None

# %% [markdown]
# ## How much of the device the hot loops use
#
# Our training loop (one epoch of crop-and-flip SGD on random images, full width on a
# GPU) and the attacks and attributions that dominate a GPU grid, each in bf16 autocast
# (the fast path) and in float32. Rates are medians of five repeats after a warm-up,
# with the slowest and fastest repeat in brackets; FLOPs come from `paperlib.core.cost`
# (counted on the meta device), and the share of peak is against the GPU's data-sheet
# dense bf16 rate. Training counts images, the attacks count image-steps (PGD and
# APGD: 10 steps per image; occlusion: one forward pass per patch position).
# %%
utilisation_table(reports, "utilisation") if reports else None
# %%
utilisation_table(reports, "attacks") if reports else None
# %% [markdown]
# ## How many epochs the full-scale recipe needs
#
# `python -m benchmarks.recipe` trains each base model of experiment 2 on the full
# splits with the profile's recipe at the batch size and peak learning rate shown, and
# scores it on the 10,000 test images. These runs are the evidence for the training
# length the `paper` profile uses; an architecture missing here did not finish inside
# the device time of the run.
# %%
recipes = load_recipe_probes(Path(benchmarks) / "recipe")
recipes if not recipes.empty else Markdown("No recipe probe yet.")
# %% [markdown]
# ## The plan beside the measurement
#
# `make plan PROFILE=… [DEVICE=h100]` predicts a profile's cost before it runs: the
# FLOPs of every stage of every cell, counted from the profile's sizes, over the rate
# `make bench` measured for that stage's own kind of pass and precision (bf16 for
# training and the searching attacks; float32 without TF32 for DeepFool, occlusion,
# Grad-CAM and the verdict passes), plus a start-up cost per cell; on a GPU every
# optimizer step costs at least a few milliseconds, and cuDNN's autotuning and the
# penalty's per-tensor kernels come on top. Attacks that stop early (DeepFool,
# AutoAttack's later components) enter with stated assumptions (`paperlib/run/plan.py`,
# `paperlib/run/stages.py`). Here is each profile's plan, for the device its results
# were measured on, beside the time its cells took (summed, divided by the cells it runs
# at once) and the processor time of the cells that record it ("cpu timed"). On a CPU
# the plan keeps every core busy, so its minutes cost as many processor-minutes per
# core: the `study`'s plan on two cores is twice its minutes in CPU time.
# %%
planned_for = {"smoke": None, "cpu": None, "study": None, "paper": "h100", "sweep": "h100"}
plan_vs_measured(planned_for, reports).set_index(["profile", "experiment"])
# %% [markdown]
# Every figure the `paper` plan for one H100 rests on, each **measured** (by which
# report, on which device) or **assumed** (and why). A rate measured on another GPU is
# scaled by the two memory bandwidths and counts as assumed; a float32 rate measured
# while cuDNN still used TF32 is capped at half the float32 peak.
# %%
plan_inputs("paper", "h100", reports, load_recipes(Path(benchmarks))).set_index("input")
# %% [markdown]
# ## The GPU check
#
# `make gpu-check` is the first thing to run on a machine with a GPU, before a grid:
# every stage of a cell on the device, per architecture, once at the smoke profile's
# sizes with every attack and attribution, and once for a single step at the `paper`
# profile's sizes (its largest passes), each with its seconds and its peak memory. A
# stage whose peak, times the cells that share a GPU, would not fit in the GPU's memory
# counts as failed. On a machine without a GPU it runs as a dry run on the CPU (tiny
# sizes, VGG-16 only, no memory measured), which is what the tests run.
# %%
checks = load_reports(Path(benchmarks) / "gpu-check")
gpu_check_table(checks) if checks else Markdown("No GPU check yet: run `make gpu-check`.")
# %% [markdown]
# ## How long each profile's grids took
#
# The sum of every cell's wall time, per experiment, on the device its results record.
# The grid runs several cells at once, so that sum divided by their number estimates
# the grid's wall time, which is what the profile's time budget bounds (kernel start-up
# and the book build come on top). The processor time ("cpu seconds", over the "cpu
# timed" cells that record it) is what the cells cost when a run shared its cores or
# was stopped part of the way, as a study that spans sittings is.

# %%
stages = stage_table(names)
(
    stages.set_index(["profile", "experiment"]).round(0)
    if not stages.empty
    else Markdown("No results for these profiles yet.")
)

# %% [markdown]
# ## Summary
#
# Every figure above is read from a benchmark report or from the provenance of the
# results this book was built from; none is typed in. The ratios against each
# baseline hold across machines, the absolute rates do not, and the plan beside the
# measurement shows how far the cost model can be trusted before a run is launched.
