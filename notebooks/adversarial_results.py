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
# # Experiment 2 results: robustness across architectures and regularizers
#
# In this notebook we gather every cell of the adversarial grid of one profile, set our
# Table 1 beside the paper's, redraw its Figures 2 and 3 from our runs, add what the
# paper leaves out (clean accuracy, the undefended models, other ε, sparsity), follow
# every measure along the penalty's strength, and check each of the paper's claims
# against 95% intervals.

# %% tags=["parameters"]
profile = "cpu"  # whose results to show: smoke, cpu or paper
others = ""  # more profiles to set beside this one, comma-separated, e.g. "paper"

# %%
import pandas as pd
from IPython.display import Markdown, display

from paperlib import (
    accuracy_kept,
    adversarial_verdicts,
    at_strength,
    audit_details,
    audit_table,
    clean_and_undefended,
    comparisons_frame,
    cross_attack_table,
    deepfool_rho,
    eps_sweep_figure,
    figure2,
    figure3,
    forest_plot,
    grid_results,
    load_profile,
    page_results,
    penalty_figure,
    penalty_table,
    run_table,
    seed_frame,
    sparsity_robustness,
    sparsity_scatter,
    strongest_kept,
    table1,
    table1_beside,
    table1_display,
    verdict_table,
    verdicts_at_each_strength,
)

pd.set_option("display.max_colwidth", None)  # the evidence column in full

rules = load_profile(profile).testable  # which models may decide a claim
results = page_results(profile, "adversarial")

# %% [markdown]
# ## Table 1: accuracy under attack after adversarial training
#
# Each entry is the accuracy (%) of the adversarially fine-tuned model on the fixed
# attacked test images, with a 95% bootstrap interval (over seeds, then images, where
# there are several seeds), next to the paper's value. The paper gives no intervals, no clean accuracy and no seeds. Its
# regularized models all use the strength c = 0.01, and so do the rows here; the
# weaker strengths follow further down.
#
# The paper's protocol can be read two ways, and both are computed (the methods page
# explains them). In the **transfer** reading, which follows the example of
# adversarial training in ART, the library the paper used, the test images are
# crafted once against the original model and the fine-tuned model classifies them.
# This is the table set beside the paper's. In the **white-box** reading, the
# fine-tuned model is attacked again.
#
# Read the DeepFool column with care. DeepFool has no budget: it keeps stepping until
# the prediction changes, so in the white-box reading its accuracy tends to zero on any
# model with useful gradients, and what survives it are mostly images where its
# gradients vanish (for example a model that has collapsed to one class). How far it
# had to push is the informative number: its robustness ρ, further down.
#
# A ⚑ marks a model whose cell failed the gradient-masking audit (further down): its
# numbers may overstate its robustness. A ✗ marks a model that may not decide a claim:
# it collapsed (one class for most images, or near chance) or lost more clean accuracy
# against base than the profile's `testable` thresholds allow. Where one seed is
# attacked, an interval is never narrower than Wilson's for the pooled count, so 0 of
# 200 correct reads [0.0, 1.9] rather than a certain 0.

# %%
t1 = table1(results, "transfer", rules)
display(Markdown("**Transfer reading** (set beside the paper's Table 1)"))
display(table1_display(t1))
t1_white_box = table1(results, "white-box", rules)
display(Markdown("**White-box reading**"))
table1_display(t1_white_box)

# %% [markdown]
# ### Beside the other profiles
#
# When another profile has results too (say a GPU run of the `paper` profile,
# committed to the repository), its Table 1 stands here next to this profile's, and the paper's.

# %%
beside = [profile, *(p.strip() for p in others.split(",") if p.strip())]
if len(beside) > 1:
    side_by_side = table1_beside({p: grid_results(p, "adversarial")[0] for p in beside})
    display(side_by_side)
    if side_by_side.attrs["not run by any profile"]:
        display(
            Markdown(f"Not run by any profile: {side_by_side.attrs['not run by any profile']}.")
        )
else:
    display(Markdown("No other profile has results in this checkout."))

# %% [markdown]
# ## Figure 2: the same numbers as grouped bars
#
# Black ticks mark the paper's values; cross-hatched bars belong to cells that failed
# the gradient-masking audit.

# %% mystnb={"figure": {"caption": "Counterpart of the paper's Figure 2, transfer reading: accuracy of the adversarially fine-tuned models on test images crafted against the original models, one panel per architecture. Bars are ours with 95% bootstrap intervals over the attacked test images; black ticks are the paper's Table 1 values."}}
fig = figure2(t1)

# %% mystnb={"figure": {"caption": "Figure 2 in the white-box reading: accuracy of the adversarially fine-tuned models when attacked again; black ticks are the paper's Table 1 values."}}
fig = figure2(t1_white_box)

# %% [markdown]
# ## Figure 3: VGG-16 training curves for the four regularizers
#
# The paper reads two things off its Figure 3: the regularized models converge a
# little more slowly, and the unregularized model's validation loss starts to climb
# and swing, a sign of overfitting. The loss axis is logarithmic because the penalty
# terms make the regularized losses much larger.

# %% mystnb={"figure": {"caption": "Counterpart of the paper's Figure 3: VGG-16 training and validation accuracy and loss per epoch for each regularizer (log loss axis)."}}
vgg = {
    r.params.regularizer: r.history
    for r in at_strength(results)
    if r.params.arch == "vgg16" and r.params.seed == 0
}
fig = figure3(vgg) if vgg else display(Markdown("No VGG-16 cells in this profile's grid."))

# %% [markdown]
# ## What the paper leaves out: clean accuracy and the undefended models
#
# Accuracy under attack cannot exceed clean accuracy, so it is the first thing to know
# when reading Table 1. A model that has collapsed to predicting one class scores
# about 10% both clean and under every attack. The last columns attack the undefended
# model as robustness is usually reported, at the common ε = 8/255: FGSM, untargeted
# PGD from a random start, and AutoAttack (Croce and Hein 2020), the field's reference
# ensemble, with the components this profile runs (below). They also give DeepFool's
# mean L2 perturbation and the outcome of the gradient-masking audit.

# %%
components = {", ".join(r.metrics.autoattack.components) for r in results}
display(Markdown(f"AutoAttack components run: {'; '.join(sorted(components))}."))
clean_and_undefended(results).set_index(["arch", "regularizer", "penalty", "seed"])

# %% [markdown]
# ## DeepFool's robustness ρ
#
# DeepFool has no ε, so accuracy under it says little. Its own paper measures
# robustness as ρ, the median of ‖r‖₂ / ‖x‖₂ over the images it fooled: how far, in
# proportion to the image, it had to push to cross the nearest decision boundary.
# Larger is more robust. Images it failed to fool are counted apart rather than
# averaged in (on a collapsed model, with no gradient to follow, it fools nothing).

# %%
deepfool_rho(results).set_index(["arch", "regularizer", "penalty", "seed"])

# %% [markdown]
# ## The cross-attack matrix
#
# Each model fine-tuned against one attack, met by all three (accuracy %, "transfer /
# white-box", the mean over seeds). The diagonal is Table 1. A model that resists only
# the attack it was trained on, and falls to the others, learned to defeat that attack
# rather than to be robust; a white-box number far above the transfer one is a hint of
# masked gradients.

# %%
cross_attack_table(results)

# %% [markdown]
# ## The gradient-masking audit
#
# Carlini et al. (2019) list symptoms that give away a model whose gradients mislead
# the attacker. Each cell checks its undefended model for all five and each of its
# fine-tuned models for the three that its row of the cross-attack matrix allows:
#
# - **monotone_in_eps**: accuracy under PGD does not rise as ε grows;
# - **iterative_beats_single_step**: PGD leaves no more images correct than FGSM at
#   the same ε;
# - **large_eps_breaks**: DeepFool, which has no budget, and PGD at ε = 0.3 leave
#   about 0 (at most 5 %) on a model that has not collapsed to one class;
# - **gradient_free_not_stronger**: the gradient-free Square attack, run last in
#   AutoAttack, fools at most 5 % of the images the gradient attacks left;
# - **robust_below_clean**: no attack leaves more images correct than the clean model.
#
# "No more" and "does not rise" allow for noise: a one-sided exact test on the images
# where the two outcomes differ, at 5 % split over the comparisons of a check. "–"
# means the check applied to none of the cell's models (a collapsed model, or a
# profile without the attack it needs).

# %%
audit_table(results).set_index("cell")

# %%
details = audit_details(results)
display(
    details.set_index(["cell", "model", "check"]) if len(details) else Markdown("No check failed.")
)

# %% [markdown]
# ## The penalty's strength
#
# The paper tries a single strength, c = 0.01. Here every regularizer also runs at
# weaker strengths, and each measure is followed along c: clean accuracy, robustness of
# the undefended model (accuracy under PGD at ε = 8/255 and DeepFool's robustness ρ)
# and the activation density. A penalty that drags clean accuracy down
# to chance has not made a robust model, only a broken one, so read the first panel
# first.

# %%
sweep = penalty_table(results, rules)

# %% mystnb={"figure": {"caption": "Clean accuracy, accuracy under PGD at 8/255, DeepFool's robustness \u03c1 (missing where it fooled nothing) and activation density of the clean-trained models against the penalty strength c (log axis), one line per architecture and regularizer (mean over seeds); horizontal lines are the base models."}}
fig = penalty_figure(sweep)

# %% [markdown]
# Which strengths keep clean accuracy within 5 points of the base model (the mean of
# its seeds), and the strongest that does for each regularizer:

# %%
display(accuracy_kept(sweep).set_index(["arch", "regularizer", "penalty"]))
strongest_kept(sweep).set_index(["arch", "regularizer"])

# %% [markdown]
# ## Robustness against ε, and against sparsity

# %% mystnb={"figure": {"caption": "Accuracy of the undefended models under FGSM (left) and untargeted PGD from a random start (right) as the L\u221e radius \u03b5 grows, one line per cell."}}
fig = eps_sweep_figure(results)

# %% mystnb={"figure": {"caption": "Activation density of each clean-trained model against its accuracy under PGD at 8/255, one point per cell (every architecture, regularizer, strength and seed); cells that failed the gradient-masking audit are ringed in red."}}
fig = sparsity_scatter(sweep)

# %% [markdown]
# The paper's argument is that sparsity causes robustness. If it did, sparser models
# should be more robust among models of similar clean accuracy. The table gives the
# Spearman correlation across cells that kept their clean accuracy (within 5 points of
# their base), with a 95% bootstrap interval over cells. A denser activation code is a
# *higher* density, so the argument predicts a negative correlation between activation
# density and robustness, and a positive one for the Hoyer measure and the share of
# near-zero weights. With few cells the intervals are wide; an interval that spans
# zero supports neither direction.

# %%
sparsity_robustness(sweep).set_index(["sparsity", "robustness"])

# %% [markdown]
# ## The paper's claims, checked
#
# Each claim is judged as the analysis plan (`params/analysis.yaml`, printed on the
# methods page) fixed before the study ran. Each regularizer is compared with the base
# model of the same architecture at its **primary strength**, the strongest c whose
# validation accuracy stays within 2 points of base; the other strengths are secondary.
# Seeds are paired across arms (the same initialization, data order and crops), and
# each comparison's interval comes from the block analysis of seeds × images, so it
# carries the seed-to-seed variance. The primary endpoint is the paper's transfer
# reading *minus a placebo fine-tune* on clean images: what adversarial training adds
# beyond the model having moved. Against the margin the paper's own Table 1 implies,
# a claim is *reproduced*, *not reproduced*, *helps, less than claimed*,
# *underpowered* (the design could not see the margin) or *inconclusive*; a comparison
# with a model that collapsed, or lost more clean accuracy than the margin, is *not
# testable*.

# %%
verdicts = verdicts_at_each_strength(adversarial_verdicts, results, rules)

# %% [markdown]
# The forest plot of each claim: every comparison's effect with its 95 % interval, one
# panel per strength (the primary one first). The grey bar runs from zero to the
# comparison's margin.

# %% mystnb={"figure": {"caption": "Regularization and accuracy under attack after adversarial training (transfer reading minus placebo), regularized minus base, in points, per architecture, attack and regularizer; one panel per penalty strength, the primary strengths first."}}
fig = forest_plot(verdicts, "regularization-helps")

# %% mystnb={"figure": {"caption": "Elastic net against L1 and L2 on the same endpoint, in points; one panel per penalty strength."}}
fig = forest_plot(verdicts, "elastic-most-consistent")

# %% [markdown]
# The verdicts, primary first, each with its family's mean effect, interval, margin,
# minimum detectable effect (MDE), seeds and images; then the secondary strengths and
# the secondary endpoints (the white-box reading, AutoAttack and PGD at 2/255 and
# 4/255, DeepFool's log ρ).

# %%
verdict_table(verdicts).set_index(["claim", "endpoint", "strength"])

# %% [markdown]
# The long table of comparisons behind every verdict.

# %%
comparisons_frame(verdicts).set_index(["claim", "endpoint", "strength", "comparison"])

# %% [markdown]
# The same comparisons seed by seed (on the primary endpoint, each seed's paired differences averaged
# over images): the seeds are the unit of the analysis, and their spread is the seed
# variance inside the intervals.

# %%
per_seed = seed_frame(verdicts)
per_seed = per_seed[per_seed.endpoint == "transfer minus placebo"]
per_seed.pivot_table(index=["claim", "strength", "comparison"], columns="seed", values="effect")

# %% [markdown]
# ## Where these numbers come from

# %%
run_table(results).set_index("cell")

# %% [markdown]
# ## Summary
#
# The verdicts above are computed from this profile's runs, at the primary strengths
# and, as secondary verdicts, at every other strength the profile ran. Read them together with the
# clean accuracies and the penalty sweep: a model that learned nothing is "robust"
# only in the sense that there is nothing left to attack, so such models are marked
# not testable, and the weaker strengths show what a penalty that leaves the model
# working does. The summary page sets each verdict beside what the same rule concludes
# from the paper's own Table 1.
