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
# # Experiment 3 results: attribution stability across regularizers
#
# In this notebook we gather every cell of the attribution grid of one profile, set our
# Table 2 beside the paper's, look at the same numbers per architecture and through a
# rank-based measure, sweep the settings, and check the paper's three claims about
# attribution with paired 95% intervals.

# %% tags=["parameters"]
profile = "cpu"  # whose results to show: smoke, cpu or paper
others = ""  # more profiles to set beside this one, comma-separated, e.g. "paper"

# %%
import pandas as pd
from IPython.display import Markdown, display

from paperlib import (
    attribution_verdicts,
    comparisons_frame,
    forest_plot,
    grid_results,
    load_profile,
    page_results,
    per_architecture,
    run_table,
    seed_frame,
    sweep_figure,
    table2,
    table2_beside,
    verdict_table,
    verdicts_at_each_strength,
)

pd.set_option("display.max_colwidth", None)  # the evidence column in full

rules = load_profile(profile).testable  # which models may decide a claim
results = page_results(profile, "attribution")

# %% [markdown]
# ## Table 2: how much the maps change
#
# SSD between the two maps of each image (4×4 against 2×2 occlusion patch; Grad-CAM of
# the image against Grad-CAM of its blurred copy), mean ± standard deviation over
# images, pooled over the architectures of this profile's grid, at the paper's strength
# c = 0.01. The paper does not say whether its
# Table 2 pools architectures or shows one. Both sides scale each map to [0, 1] first
# on our part; the paper does not state its scaling, so absolute values may not be
# comparable, only the ordering of regularizers.

# %%
table2(results)

# %% [markdown]
# ### Beside the other profiles
#
# When another profile has results too (say a GPU run of the `paper` profile,
# committed to the repository), its Table 2 stands here next to this profile's, and the paper's.

# %%
beside = [profile, *(p.strip() for p in others.split(",") if p.strip())]
if len(beside) > 1:
    display(table2_beside({p: grid_results(p, "attribution")[0] for p in beside}))
else:
    display(Markdown("No other profile has results in this checkout."))

# %% [markdown]
# ## Per architecture, and by rank correlation
#
# The SSD of min-max-scaled maps reacts strongly to a single extreme pixel. The
# Spearman correlation between the two maps (1 = same pixel ranking) does not depend
# on scaling at all. Accuracy on the images is shown because a model that predicts one
# class for everything has little to explain. Every strength of the penalty is listed,
# so the weaker ones, which keep their accuracy, can be read beside the paper's.

# %%
per_architecture(results).set_index(["arch", "regularizer"])

# %% [markdown]
# ## Sweeps
#
# One pair of settings can mislead, so the patch size and the blur σ are swept.

# %% mystnb={"figure": {"caption": "Mean SSD against the occlusion patch size (left, each compared with the small patch) and against the blur \u03c3 before Grad-CAM (right), one line per architecture and regularizer, so that one pair of settings is not read as a trend."}}
fig = sweep_figure(results)

# %% [markdown]
# ## The paper's claims, checked
#
# Each claim is judged as the analysis plan fixed it (the methods page prints it), at
# the primary strengths of experiment 2 (the same models), and at every other strength
# as secondary verdicts. Each comparison is the per-image SSD difference on the same
# images, over seeds paired across arms, relative to the base model's mean SSD (the
# SSD's scale depends on how maps are drawn, so only relative changes carry over from
# the paper); its interval comes from the block analysis of seeds × images. The
# margins are half the paper's own relative effects in Table 2. Images whose map is
# flat in any model are left out. A model that predicts one class has constant maps,
# whose SSD is 0 however unstable it is: such a comparison is not testable.

# %%
verdicts = verdicts_at_each_strength(attribution_verdicts, results, rules)

# %% mystnb={"figure": {"caption": "Regularized against base on the sliding-patch SSD (base minus regularized, relative to base's mean SSD), per architecture and regularizer; one panel per penalty strength, the primary strengths first."}}
fig = forest_plot(verdicts, "regularized-stabler-occlusion")

# %% mystnb={"figure": {"caption": "The same for the Grad-CAM SSD under a blur of sigma = 0.5."}}
fig = forest_plot(verdicts, "regularized-stabler-gradcam")

# %%
verdict_table(verdicts).set_index(["claim", "strength"])

# %% [markdown]
# The long table of comparisons behind every verdict.

# %%
comparisons_frame(verdicts).set_index(["claim", "strength", "comparison"])

# %% [markdown]
# The same comparisons seed by seed (each seed's paired differences averaged
# over images): the seeds are the unit of the analysis, and their spread is the seed
# variance inside the intervals.

# %%
per_seed = seed_frame(verdicts)
per_seed.pivot_table(index=["claim", "strength", "comparison"], columns="seed", values="effect")

# %% [markdown]
# ## Where these numbers come from

# %%
run_table(results).set_index("cell")

# %% [markdown]
# ## Summary
#
# The verdicts are computed from this profile's runs. A small design that cannot see the
# paper's margin says so ("underpowered", with its minimum detectable effect) rather
# than guessing.
