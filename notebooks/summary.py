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
# # Summary: which of the paper's claims hold up
#
# In this notebook we gather the verdict on every claim the paper makes, computed from
# the runs of each profile that has results, next to where the paper makes the claim.
# A verdict is *reproduced* only when the 95% intervals support the claim, *not
# reproduced* when they contradict it, and *inconclusive* otherwise. The chapters
# behind each row show the full evidence.

# %% tags=["parameters"]
profiles = "cpu"  # comma-separated profiles to set side by side, e.g. "cpu,paper"

# %%
import pandas as pd
from IPython.display import Markdown, display

from paperlib.summary import claims_table, run_facts

names = [p.strip() for p in profiles.split(",") if p.strip()]
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## The claims

# %%
claims_table(names).set_index("claim")

# %% [markdown]
# ## What produced these verdicts
#
# Cell hours add up the wall time of every grid cell; devices and data sources are read
# from each result's provenance. A `*` after a commit marks a run from a working tree
# with uncommitted changes.

# %%
facts = pd.DataFrame([run_facts(p) for p in names]).set_index("profile")
facts["cell hours"] = facts["cell hours"].round(2)
facts

# %%
if any("JPEG" in d or "image-folder" in d for d in facts["data"]):
    display(
        Markdown(
            "**Data note.** At least one profile read a JPEG-compressed image-folder "
            "copy of CIFAR-10, whose pixels differ slightly from the original batches."
        )
    )
