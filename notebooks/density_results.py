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
# # Experiment 1 results: sparsity versus density across λ
#
# In this notebook we gather every cell of the density grid of one profile and draw
# the counterpart of the paper's Figure 1: the average density of the hidden layer and
# the accuracy of the single-layer CNN for each value of the activation penalty λ.
# Then we check the paper's two claims about it against our numbers.

# %% tags=["parameters"]
profile = "cpu"  # whose results to show: smoke, cpu or paper
others = ""  # more profiles to set beside this one, comma-separated, e.g. "paper"

# %%
import pandas as pd
from IPython.display import Markdown, display

from paperlib import (
    comparisons_frame,
    density_beside,
    density_display,
    density_figure,
    density_table,
    density_verdicts,
    forest_plot,
    grid_results,
    load_profile,
    page_results,
    run_table,
    seed_frame,
    verdict_table,
)

pd.set_option("display.max_colwidth", None)  # the evidence column in full

results = page_results(profile, "density")

# %% [markdown]
# ## Density and accuracy against λ
#
# Bars show the average density over test images; the dashed line marks 0.5, the upper
# end of what the paper calls a sparse code. The right panel shows training and test
# accuracy. Error bars are 95% bootstrap intervals over test images.

# %% mystnb={"figure": {"caption": "Counterpart of the paper's Figure 1: the average density of the hidden layer over test images for each \u03bb (left; the dashed line marks 0.5), and train and test accuracy (right). Error bars are 95% bootstrap intervals over test images."}}
table = density_table(results)
fig = density_figure(table, title=f"Figure 1 counterpart ({profile} profile)")

# %% [markdown]
# The same numbers as a table. The last column is the paired change in test accuracy
# against the unregularized model (λ = 0) on the same test images, with a 95% paired
# bootstrap interval.

# %%
density_display(table).set_index("λ")

# %% [markdown]
# ### Beside the other profiles
#
# When another profile has results too (say a GPU run of the `paper` profile,
# committed to the repository), its density and test accuracy per λ stand here next to
# this profile's.

# %%
beside = [profile, *(p.strip() for p in others.split(",") if p.strip())]
if len(beside) > 1:
    display(density_beside({p: grid_results(p, "density")[0] for p in beside}))
else:
    display(Markdown("No other profile has results in this checkout."))

# %% [markdown]
# ## The paper's claims, checked
#
# The paper gives Figure 1 without numbers, so we test its two claims with the margins
# of the analysis plan (on the methods page), by the rule every claim uses: seeds paired
# across λ as the unit, images within seeds, one-sided tests with Holm's correction over
# the family. "Density falls" asks each λ > 0 to lower the average density by at least
# 0.05 below λ = 0's. "As accurate" asks every sparse model (density at most 0.5) to lose
# less than 2 points of test accuracy against λ = 0, on the same test images. A model
# that collapsed to one class decides neither claim: its units can be silent because it
# stopped learning.

# %%
verdicts = density_verdicts(results, load_profile(profile).testable)

# %% mystnb={"figure": {"caption": "Each \u03bb > 0 against \u03bb = 0: the fall in average density, with its 95 % interval over seeds and images; the grey bar runs from zero to the 0.05 margin."}}
fig = forest_plot(verdicts, "density-falls")

# %% mystnb={"figure": {"caption": "The change in test accuracy of each sparse model against \u03bb = 0, in points, with its 95 % interval; the grey bar runs from zero to minus the 2-point margin."}}
fig = forest_plot(verdicts, "sparse-as-accurate")

# %% [markdown]
# The verdicts, each with its family's mean effect, interval, margin, minimum
# detectable effect (MDE), seeds and images.

# %%
verdict_table(verdicts).set_index("claim")

# %% [markdown]
# The long table of comparisons behind each verdict, then the same comparisons seed by
# seed: the seeds are the unit of the analysis, and their spread is the seed variance
# inside the intervals.

# %%
comparisons_frame(verdicts).set_index(["claim", "comparison"])

# %%
seed_frame(verdicts).pivot_table(
    index=["claim", "comparison", "unit"], columns="seed", values="effect"
)

# ## Where these numbers come from

# %%
run_table(results).set_index("cell")

# %% [markdown]
# ## Summary
#
# The verdicts above are computed from this profile's runs, not written by hand. A
# miniature profile trains on a subset for a few epochs, so its accuracies sit below
# what full training reaches; the question it answers is the paper's, whether
# switching hidden units off costs accuracy.
