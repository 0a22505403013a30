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
# # Experiment 2: does weight regularization make a network harder to fool?
#
# In this notebook we take one architecture and one regularizer at one strength, train
# the model on clean CIFAR-10, and attack it three ways. Then, once per attack, we
# fine-tune it on its own adversarial examples and score it on adversarial test images
# again, in the two ways the paper's wording allows. The accuracy that survives is the
# number the paper reports in its Table 1 (Section 4.2).
#
# The regularizers penalize the kernels of every convolution and fully connected layer
# (never biases or batch norm), added to the mean cross-entropy as Keras does:
# L1 adds c·Σ|W|, L2 adds c·ΣW², elastic net adds both. The paper's strength is
# c = 0.01; the grid also runs weaker ones, because at 0.01 some models stop learning.

# %% tags=["parameters"]
profile = "cpu"  # a file in params/: smoke, cpu or paper
arch = "vgg16"  # resnet50, mobilenet or vgg16
regularizer = "elastic"  # base, l1, l2 or elastic
penalty = 0.01  # c, the penalty's strength (the paper's 0.01); 0 for base
seed = 0  # training seed; the data subsets are the same for every cell
data_path = None  # local CIFAR-10 copy, or None: use PAPERLIB_DATA or the profile

# %%

from paperlib import (
    ATTACKS,
    AdversarialMetrics,
    Audit,
    AutoAttackAtEps,
    CleanMetrics,
    CrossAttack,
    DefendedReport,
    Endpoints,
    EpsSweep,
    Placebo,
    StandardEps,
    accuracy,
    adversarial_examples,
    adversarial_finetune,
    audit_finetuned,
    audit_frame,
    audit_undefended,
    bootstrap_ci,
    cell_result,
    clean_trained_model,
    collapse_reason,
    correct,
    cross_attack_frame,
    data_identity,
    default_device,
    failures,
    load_profile,
    load_profile_data,
    make_attack,
    make_cell,
    make_penalty,
    make_splits,
    now,
    pack_outcomes,
    penalized_cross_entropy,
    perturbation_ratios,
    placebo_finetune,
    predict,
    predicted_counts,
    provenance,
    run_attack,
    run_autoattack,
    seed_everything,
    sparsity_report,
    training_curves,
    training_options,
    write_result,
)

# %%
started = now()
settings = load_profile(profile)
cell = make_cell(
    "adversarial", {"arch": arch, "regularizer": regularizer, "penalty": penalty, "seed": seed}
)
cfg = settings.adversarial
device = default_device()
data_id = data_identity(settings, data_path)
print(f"profile {settings.name}, cell {cell.cell_id}, device {device}")

# %% [markdown]
# ## The data
#
# Seeded, class-balanced subsets: a clean training set, a validation set held out of
# the training split, and test images on which clean accuracy is measured. The first
# of them are the fixed set that every attack in every cell targets, so that cells can
# be compared image by image.

# %%
data = load_profile_data(settings, data_path)
splits = make_splits(
    data, train_size=cfg.train_size, val_size=cfg.val_size, test_size=cfg.test_size, seed=0
)
eval_images, eval_labels = (t[: cfg.eval_size] for t in splits.test)
print(f"source: {splits.source}")
print(
    f"train {len(splits.train[1])}, validation {len(splits.val[1])}, "
    f"test {len(splits.test[1])}, attacked {len(eval_labels)}"
)
if splits.note:
    print(f"note: {splits.note}")

# %% [markdown]
# ## Training on clean images
#
# The model normalizes its [0, 1] input itself. Training follows the profile's recipe
# (by default SGD with Nesterov momentum under a one-cycle schedule, with random crops
# and flips); the recorded loss includes the penalty. The clean-trained weights are saved as a checkpoint keyed by
# everything that shaped them, so a rerun, and the attribution experiment, reuse them.

# %% mystnb={"figure": {"caption": "Clean training of this cell's model: loss (left; it includes the weight penalty) and accuracy (right) per epoch, on the training and validation images."}}
model, history, model_key, reused = clean_trained_model(
    settings, cell, splits.train, splits.val, data_id, device
)
n_params = sum(p.numel() for p in model.parameters())
print(
    f"{cell.arch} at width {cfg.width.get(cell.arch, 1.0)}: {n_params:,} parameters; "
    f"checkpoint {model_key} {'reused' if reused else 'trained and saved'}"
)
fig = training_curves(history, title=f"{cell.arch}, {cell.regularizer}: clean training")

# %% [markdown]
# ## The clean model, and how sparse it became
#
# Clean accuracy is measured on all the test images. The paper's argument is that
# sparsity brings robustness, so we measure sparsity where it argues it matters:
#
# - **activation density**, the fraction of post-ReLU units that fire for a test
#   image, per layer and over the whole network;
# - **weight sparsity**, the fraction of penalized weights below 10⁻⁴, 10⁻³ and 10⁻²;
# - **Hoyer's measure** of the penalized weights, which needs no threshold and ignores
#   scale (a batch norm can undo a kernel that shrank as a whole).

# %%
model.eval()
test_predictions = predict(model, splits.test[0])
test_correct = test_predictions == splits.test[1]
clean_correct = test_correct[: cfg.eval_size]
clean = CleanMetrics(
    accuracy=test_correct.float().mean().item(),
    predicted_counts=predicted_counts(test_predictions),
    accuracy_ci=bootstrap_ci(test_correct.numpy()),
    test_size=len(test_correct),
    accuracy_on_attacked=clean_correct.float().mean().item(),
    # Held out of training: what picks a primary penalty strength, never test data.
    val_accuracy=history[-1]["val_acc"],
    # On as many training images as test images: enough to see overfitting, and cheap.
    train_accuracy=accuracy(model, *(t[: cfg.test_size] for t in splits.train)),
)
sparsity = sparsity_report(model, splits.test[0][: cfg.eval_size])
print(clean)
print(f"activation density {sparsity.activation_density:.3f}, Hoyer {sparsity.hoyer:.3f}")
print("share of weights below each threshold:", sparsity.weight_sparsity)

# %% [markdown]
# ## Attacking the undefended model
#
# - **FGSM** takes one step of size ε along the sign of the loss gradient (L∞).
# - **PGD** repeats smaller signed steps, projecting back into the ε-ball after each;
#   following the paper it is *targeted*: each image is pushed towards a random wrong
#   class.
# - **DeepFool** looks for the smallest L2 push across the nearest linearized decision
#   boundary, step by step, until the prediction changes. It has no ε.
#
# Success rate and perturbation norms count only images the model got right before.
# DeepFool's robustness ρ is the median of ‖r‖₂ / ‖x‖₂ over the images it fooled (its
# paper's own measure); images it failed to fool are counted apart.

# %%
undefended, undefended_bits, crafted_test = {}, {}, {}
for name in ATTACKS:
    report, bits, crafted_test[name] = run_attack(
        name, model, cfg.attacks, eval_images, eval_labels, device
    )
    undefended[name], undefended_bits[name] = report, bits
    print(
        f"{name:>9}: accuracy {report.accuracy:.3f}, success {report.success_rate:.3f}, "
        f"L-inf {report.linf:.3f}, L2 {report.l2:.3f}, rho {report.rho}"
    )

# %% [markdown]
# Six attacked test images per attack: the adversarial image, the perturbation
# (stretched to be visible), and the model's prediction before → after.

# %% mystnb={"figure": {"caption": "Adversarial versions of the first test images against the clean model, one pair of rows per attack: the attacked image, titled with the true class and the prediction before and after (red when wrong), and the perturbation, stretched to the full colour range so that it is visible."}}
examples = {name: adversarial[:6].cpu() for name, adversarial in crafted_test.items()}
fig = adversarial_examples(model, eval_images[:6], eval_labels[:6], examples)

# %% [markdown]
# ## Adversarial training, then attacking again
#
# For each attack we craft adversarial versions of training images against the clean
# model (kept in float, so that they stay adversarial), and fine-tune a copy of the
# model on those images plus their clean originals, with the same regularizer. The
# paper's wording admits two ways to score the fine-tuned model, and we compute both:
#
# - **transfer**: the adversarial test images crafted above against the *original*
#   model, classified by the fine-tuned one. This is what the example of adversarial
#   training in ART (the library the paper used) does, and the reading set beside the
#   paper's Table 1.
# - **white-box**: the fine-tuned model attacked again, on the same test images.

# %%
adv_set = tuple(t[: cfg.adv_train_size] for t in splits.train)
objective = penalized_cross_entropy(make_penalty(cell.regularizer, cell.penalty))
train_kwargs = dict(
    objective=objective,
    seed=cell.seed,
    device=device,
    **(training_options(cfg) | {"lr": cfg.finetune_lr}),
)
tuned_models, finetune_history = {}, {}
for name in ATTACKS:
    seed_everything(cell.seed)
    tuned_models[name], finetune_history[name] = adversarial_finetune(
        model,
        make_attack(name, model, cfg.attacks),
        adv_set,
        splits.val,
        attack_batch=cfg.attacks.batch_size,
        epochs=cfg.finetune_epochs,
        progress=False,
        **train_kwargs,
    )

# %% [markdown]
# Each fine-tuned model is attacked again (white-box), shown the images crafted against
# the clean model (transfer), and scored on the clean attacked images.

# %%
defended, defended_bits, transfer_bits, crafted_defended, tuned_clean = {}, {}, {}, {}, {}
for name, tuned in tuned_models.items():
    report, defended_bits[name], crafted_defended[name] = run_attack(
        name, tuned, cfg.attacks, eval_images, eval_labels, device
    )
    transfer_bits[name] = correct(tuned, crafted_test[name], eval_labels)
    tuned_clean[name] = correct(tuned, eval_images, eval_labels)
    defended[name] = DefendedReport(
        **vars(report),
        clean_accuracy=tuned_clean[name].float().mean().item(),
        accuracy_ci=bootstrap_ci(defended_bits[name].numpy()),
        transfer_accuracy=transfer_bits[name].float().mean().item(),
        transfer_accuracy_ci=bootstrap_ci(transfer_bits[name].numpy()),
    )
    print(
        f"{name:>9} after adversarial training: transfer {defended[name].transfer_accuracy:.3f}, "
        f"white-box {report.accuracy:.3f} (clean {defended[name].clean_accuracy:.3f})"
    )

# %% [markdown]
# ## The placebo control
#
# The transfer reading has a weakness: DeepFool's test images sit just past the
# original model's decision boundary, so any further training moves some of them back,
# adversarial or not. The control is a placebo fine-tune: the same copy of the model,
# the same number of steps, seed, rate and augmentation, on clean images alone (each
# twice, where adversarial training sees the clean image and its adversarial version).
# What adversarial training gains beyond the placebo, image by image, is robustness;
# the placebo's own gain is the model having moved.

# %%
seed_everything(cell.seed)
placebo_model, placebo_history = placebo_finetune(
    model, adv_set, splits.val, epochs=cfg.finetune_epochs, progress=False, **train_kwargs
)
placebo_bits = {name: correct(placebo_model, crafted_test[name], eval_labels) for name in ATTACKS}
placebo = Placebo(
    clean_accuracy=accuracy(placebo_model, eval_images, eval_labels),
    transfer_accuracy={name: bits.float().mean().item() for name, bits in placebo_bits.items()},
)
finetune_history["placebo"] = placebo_history
print(
    "transfer accuracy, adversarial minus placebo fine-tune:",
    {
        name: round(defended[name].transfer_accuracy - placebo.transfer_accuracy[name], 3)
        for name in ATTACKS
    },
)

# %% [markdown]
# ## The cross-attack matrix
#
# A model fine-tuned against one attack can learn to defeat that attack alone, for
# example by masking the gradient it follows. So each fine-tuned model also meets the
# two attacks it was not trained on, in both readings. The diagonal repeats the
# numbers above.

# %%
cross_attack, cross_bits = {}, {}
for trained, tuned in tuned_models.items():
    cross_attack[trained], cross_bits[trained] = {}, {}
    for name in ATTACKS:
        if name == trained:
            bits = defended_bits[name]
        else:
            _, bits, _ = run_attack(name, tuned, cfg.attacks, eval_images, eval_labels, device)
        cross_bits[trained][name] = bits
        cross_attack[trained][name] = CrossAttack(
            accuracy=bits.float().mean().item(),
            transfer_accuracy=correct(tuned, crafted_test[name], eval_labels).float().mean().item(),
        )
print(cross_attack_frame(cross_attack))

# %% [markdown]
# ## Beyond the paper: a standard ε and an ε sweep
#
# ε = 0.3 (ART's default, our assumption for the paper) is a very large L∞ budget on
# CIFAR-10, and the paper's PGD is targeted without a random start. Robustness is
# usually reported otherwise: untargeted PGD from a random start in the ε-ball (the
# worst of the profile's restarts), at the common ε = 8/255 and along a sweep of ε. We
# attack the undefended model that way, and with FGSM at the same radii.

# %%
seed_everything(cell.seed)  # PGD's random starts
standard_attacks = {"fgsm": "fgsm", "pgd": "pgd_standard"}  # result key: attack
at_eps = {
    (key, eps): run_attack(name, model, cfg.attacks, eval_images, eval_labels, device, eps=eps)
    for eps in sorted({*cfg.sweep_eps, *cfg.endpoint_eps, cfg.standard_eps})
    for key, name in standard_attacks.items()
}
sweep = EpsSweep(
    eps=cfg.sweep_eps,
    **{key: [at_eps[key, eps][0].accuracy for eps in cfg.sweep_eps] for key in standard_attacks},
)
standard = StandardEps(
    eps=cfg.standard_eps, **{key: at_eps[key, cfg.standard_eps][0] for key in standard_attacks}
)
print(
    f"accuracy at eps = 8/255: FGSM {standard.fgsm.accuracy:.3f}, PGD {standard.pgd.accuracy:.3f}"
)
print("sweep:", sweep)

# %% [markdown]
# ## AutoAttack
#
# AutoAttack (Croce and Hein 2020) is the field's reference evaluation: an ensemble of
# parameter-free attacks, each run on the images the earlier ones could not fool. Its
# standard version chains APGD on the cross-entropy, targeted APGD on the DLR loss,
# targeted FAB and the gradient-free Square attack; a profile may run a subset, named
# in its `attacks.autoattack` (the `cpu` profile leaves out FAB and shortens APGD). We
# run it on the undefended model at ε = 8/255 and at the smaller endpoint radii
# (2/255 and 4/255), where models are not all at 0 %, and record how many images each
# component fooled first. Untargeted PGD is scored at the same radii, image by image.

# %%
endpoint_radii = sorted({*cfg.endpoint_eps, cfg.standard_eps})
autoattack_by_eps = {
    eps: run_autoattack(model, cfg.attacks, eval_images, eval_labels, device, eps=eps)
    for eps in endpoint_radii
}
autoattack, autoattack_bits, _ = autoattack_by_eps[cfg.standard_eps]
endpoints = Endpoints(
    eps=endpoint_radii,
    pgd=[at_eps["pgd", eps][0].accuracy for eps in endpoint_radii],
    autoattack=[autoattack_by_eps[eps][0].accuracy for eps in endpoint_radii],
)
print("accuracy at the endpoint radii:", endpoints)
print(
    f"AutoAttack ({', '.join(autoattack.components)}) at eps = {cfg.standard_eps:.4f}: "
    f"accuracy {autoattack.accuracy:.3f}; fooled first by {autoattack.fooled_by}"
)

# %% [markdown]
# ## The gradient-masking audit
#
# A model can look robust only because its gradients mislead the attacker. Carlini et
# al. (2019) list the symptoms, and we test for each on every model this cell
# attacked: accuracy must not rise with ε; an iterative attack must do at least as
# well as a single step; an unbounded attack (DeepFool, or ε = 0.3) must take a model
# that has not collapsed (the profile's `testable` thresholds) to about 0; the gradient-free Square must find little that
# the gradient attacks missed; and no attack may leave accuracy above clean. "Within
# noise" is a one-sided exact test on the images where two outcomes differ. The
# undefended model gets all five checks, each fine-tuned model the three that its row
# of the cross-attack matrix allows. A cell that fails any check is flagged wherever
# its numbers appear.

# %%
sweep_radii = sorted({*cfg.sweep_eps, cfg.standard_eps})
audit = {
    "undefended": audit_undefended(
        cfg.audit,
        collapsed=collapse_reason(clean.accuracy, clean.predicted_counts, settings.testable),
        clean=clean_correct,
        fgsm_by_eps={e: at_eps["fgsm", e][1] for e in sweep_radii},
        pgd_by_eps={e: at_eps["pgd", e][1] for e in sweep_radii},
        paper_attacks=undefended_bits,
        autoattack_report=autoattack,
        autoattack=autoattack_bits,
    )
}
for trained, tuned in tuned_models.items():
    tuned_predictions = predict(tuned, eval_images)
    tuned_correct = tuned_predictions == eval_labels
    audit[f"fine-tuned against {trained}"] = audit_finetuned(
        cfg.audit,
        collapsed=collapse_reason(
            tuned_correct.float().mean().item(),
            predicted_counts(tuned_predictions),
            settings.testable,
        ),
        clean=tuned_correct,
        attacks=cross_bits[trained],
    )
audit_failures = failures(audit)
print(audit_frame(audit))
print("flagged:" if audit_failures else "no check failed", *audit_failures, sep="\n  ")

# %% [markdown]
# ## Saving the result
#
# The summary numbers of every model and attack above, in one record.

# %%
metrics = AdversarialMetrics(
    clean=clean,
    sparsity=sparsity,
    undefended=undefended,
    defended=defended,
    standard_eps=standard,
    eps_sweep=sweep,
    autoattack=AutoAttackAtEps(**vars(autoattack), eps=cfg.standard_eps),
    endpoints=endpoints,
    placebo=placebo,
    cross_attack=cross_attack,
    audit=Audit(checks=audit, failures=audit_failures),
)

# %% [markdown]
# The outcome on each attacked image, so that the results page can pair cells image by
# image (packed as strings of 0 and 1), and DeepFool's ‖r‖₂ / ‖x‖₂ by image (null where
# the clean image was already wrong).

# %%
correct_by_image = pack_outcomes(
    {
        "clean": clean_correct,
        "undefended": undefended_bits,
        "defended": defended_bits,
        "transfer": transfer_bits,
        "defended_clean": tuned_clean,
        "autoattack": autoattack_bits,
        "placebo": placebo_bits,
        "endpoints": {  # one entry per radius of metrics.endpoints.eps
            "pgd": [at_eps["pgd", eps][1] for eps in endpoint_radii],
            "autoattack": [autoattack_by_eps[eps][1] for eps in endpoint_radii],
        },
    }
)
deepfool_rho = {
    "undefended": perturbation_ratios(eval_images, crafted_test["deepfool"], clean_correct),
    "defended": perturbation_ratios(
        eval_images, crafted_defended["deepfool"], tuned_clean["deepfool"]
    ),
}

# %%
result = cell_result(
    "adversarial",
    settings,
    cell,
    data_id,
    metrics=metrics,
    provenance=provenance(device=device, seed=cell.seed, splits=splits, started=started),
    model_key=model_key,
    n_params=n_params,
    correct=correct_by_image,
    per_image={"deepfool_rho": deepfool_rho},
    history=history,
    finetune_history=finetune_history,
)
path = write_result(result)
print(f"wrote {path.relative_to(path.parents[3])}")

# %% [markdown]
# ## Summary
#
# This cell trained one architecture with one regularizer at one strength, measured its
# clean accuracy and the sparsity of its activations and weights, attacked it with
# FGSM, targeted PGD and DeepFool, and repeated each attack after adversarial
# fine-tuning, in both readings and across all three attacks. It also measured the
# undefended model as the field does (untargeted PGD along ε, AutoAttack at 8/255) and
# audited every model for gradient masking. The results page of this experiment sets
# the cells at the paper's strength beside its Table 1, and follows accuracy,
# robustness and sparsity along the penalty's strength.
