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
#       jupytext_version: 1.19.6
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
    density_beside,
    density_display,
    density_figure,
    density_table,
    density_verdicts,
    grid_results,
    load_profile,
    run_table,
    verdict_table,
)

pd.set_option("display.max_colwidth", None)  # the evidence column in full

results, missing = grid_results(profile, "density")
print(f"profile {profile}: {len(results)} cells with results")
if missing:
    display(Markdown(f"**Missing cells** (failed or not run): {', '.join(missing)}"))
notes = {r["provenance"]["data_note"] for r in results} - {""}
for note in notes:
    display(Markdown(f"**Data note.** {note}"))

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
# The paper gives Figure 1 without numbers, so we compare against its claims rather
# than values. "Density falls" is reproduced when the 95% intervals of the densities at
# λ = 0 and at the largest λ separate. "As accurate" is read as: no sparse model is
# worse than the dense one by more than 1 percentage point (a non-inferiority margin
# we chose; the paper states none), judged by the rule every claim uses (seeds as
# units, Holm over the sparse models). A model that collapsed to one class decides
# neither claim: its units can be silent because it stopped learning.

# %%
verdicts = density_verdicts(results, load_profile(profile).testable)
verdict_table(verdicts).set_index("claim")

# %% [markdown]
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
