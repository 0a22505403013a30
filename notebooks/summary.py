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
# One rule decides every verdict (the methods page states it): a claim is a family of
# comparisons, each tested exactly or by a bootstrap over seeds and images, with
# Holm's correction over the family. It is *reproduced* when enough comparisons are
# significant in its favour (all of them for "every", three in four for "nearly
# all"), *not reproduced* when the significant contrary ones alone rule that out, and
# *inconclusive* otherwise. It is *not testable* when the models it compares
# collapsed or lost their clean accuracy (the profile's `testable` thresholds): a
# model that learned little, or predicts one class for everything, decides nothing
# about robustness or stability. The chapters behind each row show the full evidence.
#
# The column "from the paper's own numbers" runs the same rule on the paper's
# published Tables 1 and 2, as if they were a run of ours (500 attacked images per
# entry of Table 1; the mean and standard deviation of 1,000 images per entry of
# Table 2, unpaired, since per-image values were not published). Where it already
# reads "inconclusive" or "not reproduced", the paper's own data did not establish
# the claim, whatever our runs say.

# %% tags=["parameters"]
profiles = "cpu"  # comma-separated profiles to set side by side, e.g. "cpu,paper"

# %%
import pandas as pd
from IPython.display import Markdown, display

from paperlib import (
    audit_summary,
    claims_evidence,
    claims_table,
    judge_profiles,
    run_facts,
    strength_table,
    verdicts_by_strength,
)

names = [p.strip() for p in profiles.split(",") if p.strip()]
judged = judge_profiles(names)  # every claim's verdict, per profile
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## The claims
#
# The paper regularizes every model with the same strength, c = 0.01, and the claims
# about experiments 2 and 3 are judged at that strength.

# %%
claims_table(judged).set_index("claim")

# %% [markdown]
# ### The evidence behind each verdict
#
# For each claim and profile, the comparisons that decided the verdict: the effect with
# its 95 % interval and p-value, how many comparisons were significant after Holm's
# correction, and, for a comparison that is not testable, the reason.

# %%
claims_evidence(judged).set_index(["claim", "profile"])

# %% [markdown]
# ## The penalty's strength
#
# At c = 0.01 some models barely learn, and a model that learned nothing cannot show
# robustness. For each regularizer, the strongest penalty that keeps clean accuracy
# within 5 points of the base model ("none" when every strength tried falls further;
# the drop is then the smallest one seen). The results page of experiment 2 follows
# accuracy, robustness and sparsity along the strength.

# %%
strength_table(names)

# %% [markdown]
# ## The claims at every penalty strength
#
# The same rule, applied to the claims of experiments 2 and 3 at each penalty strength
# a profile ran: the base models against the regularized ones at that strength. The
# column marked "the paper's" is the one above, set beside the paper's numbers. A
# weaker strength is not what the paper ran, but where the paper's own strength left
# models that cannot be attacked meaningfully, it is the closest question our runs can
# still answer: does a kernel penalty that leaves the model accurate buy robustness or
# stability? The results pages of experiments 2 and 3 give the evidence.

# %%
verdicts_by_strength(names).set_index("claim")

# %% [markdown]
# ## The gradient-masking audit
#
# Every model of experiment 2 was checked for the symptoms of gradient masking that
# Carlini et al. (2019) list (the methods page describes the five checks). A flagged
# cell's robustness numbers may overstate its robustness; they are marked ⚑ on the
# results page of experiment 2.

# %%
audit_summary(names)

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

# %% [markdown]
# ## Summary
#
# Each verdict above comes from our runs through one rule, and beside it stands what the
# same rule concludes from the paper's own tables. A claim our runs do not reproduce
# and the paper's numbers do not establish either is weak evidence in both; a claim the
# paper's numbers support and our runs contradict is a disagreement, and the chapter
# behind it shows where it comes from. "Not testable" marks a comparison that a model
# which stopped learning would otherwise have decided; the table along the penalty
# strength then shows what a weaker penalty, one that leaves the models accurate, says
# about the same claim.
