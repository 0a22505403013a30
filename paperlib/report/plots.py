"""Figures, drawn from the tables in ``paperlib.report``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd
import torch

from paperlib.core.accel import as_input
from paperlib.core.registry import RADIUS_ATTACKS
from paperlib.core.settings import AdversarialCell
from paperlib.report.paper import SPARSE_DENSITY
from paperlib.run.results import Result


def density_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Counterpart of the paper's Figure 1: density and accuracy against lambda.

    Lambda is categorical on the x axis (it includes 0, so a log axis cannot show it).
    Error bars are 95% bootstrap intervals over test images.
    """
    labels = [f"{lam:g}" for lam in table["lambda"]]
    x = np.arange(len(table))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    density_err = [table.density - table.density_low, table.density_high - table.density]
    left.bar(x, table.density, yerr=density_err, color="tab:blue", capsize=3)
    left.axhline(SPARSE_DENSITY, color="gray", ls="--", lw=1, label="sparse code (<= 0.5)")
    left.set(
        xticks=x,
        xticklabels=labels,
        xlabel="lambda (activation L1)",
        ylabel="average density",
        ylim=(0, 1),
        title="Hidden-layer density",
    )
    left.legend(loc="upper right", fontsize=8)
    test_err = [table.test_acc - table.test_acc_low, table.test_acc_high - table.test_acc]
    right.plot(x, table.train_acc, "o-", color="tab:orange", label="train")
    right.errorbar(
        x, table.test_acc, yerr=test_err, fmt="s-", color="tab:green", capsize=3, label="test"
    )
    right.set(
        xticks=x,
        xticklabels=labels,
        xlabel="lambda (activation L1)",
        ylabel="accuracy",
        ylim=(0, 1),
        title="Accuracy",
    )
    right.legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def training_curves(history: list[dict], title: str = "") -> plt.Figure:
    """Per-epoch loss and accuracy, train and validation."""
    epochs = [h["epoch"] for h in history]
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for split, style in (("train", "o-"), ("val", "s--")):
        loss.plot(epochs, [h[f"{split}_loss"] for h in history], style, label=split)
        acc.plot(epochs, [h[f"{split}_acc"] for h in history], style, label=split)
    loss.set(xlabel="epoch", ylabel="loss (incl. penalty)", title="Loss")
    acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="Accuracy")
    acc.legend()
    if title:
        fig.suptitle(title)
    return fig


def activation_maps(hidden: torch.Tensor, images: torch.Tensor, n_filters: int = 8) -> plt.Figure:
    """A few images and the first ``n_filters`` hidden feature maps of each."""
    rows = len(images)
    fig, axes = plt.subplots(
        rows, n_filters + 1, figsize=(1.3 * (n_filters + 1), 1.3 * rows), squeeze=False
    )
    for i in range(rows):
        axes[i, 0].imshow(images[i].permute(1, 2, 0).cpu().numpy())
        for j in range(n_filters):
            axes[i, j + 1].imshow(hidden[i, j].cpu().numpy(), cmap="magma")
        for ax in axes[i]:
            ax.set_axis_off()
    axes[0, 0].set_title("image", fontsize=8)
    for j in range(n_filters):
        axes[0, j + 1].set_title(f"filter {j}", fontsize=8)
    return fig


def adversarial_examples(
    model, images: torch.Tensor, labels: torch.Tensor, adversarials: dict[str, torch.Tensor]
) -> plt.Figure:
    """Per attack, a row of adversarial images and a row of their perturbations.

    Titles give the true class and the prediction before -> after the attack (red when
    the final prediction is wrong); perturbations are stretched to the full colour
    range so that they are visible. An image the model already got wrong is left as it
    is by DeepFool, hence a flat gray perturbation.
    """
    from paperlib.core.data import CLASSES
    from paperlib.core.metrics import predict

    clean = as_input(images)
    before = predict(model, clean)
    n = len(clean)
    fig, axes = plt.subplots(
        2 * len(adversarials), n, figsize=(1.6 * n, 3.4 * len(adversarials)), squeeze=False
    )
    for row, (name, adv) in enumerate(adversarials.items()):
        after = predict(model, adv)
        delta = adv - clean
        for i in range(n):
            top, bottom = axes[2 * row, i], axes[2 * row + 1, i]
            top.imshow(adv[i].permute(1, 2, 0).clamp(0, 1).numpy())
            top.set_title(
                f"true {CLASSES[labels[i]]}\n{CLASSES[before[i]]} -> {CLASSES[after[i]]}",
                fontsize=7,
                color="tab:red" if after[i] != labels[i] else "black",
            )
            span = delta[i].abs().max().clamp_min(1e-8)
            bottom.imshow((delta[i] / (2 * span) + 0.5).permute(1, 2, 0).numpy())
            top.set_axis_off()
            bottom.set_axis_off()
        axes[2 * row, 0].text(-4, 16, name, rotation=90, va="center", ha="right", fontsize=9)
    return fig


REG_COLORS = {"base": "tab:gray", "l1": "tab:blue", "l2": "tab:orange", "elastic": "tab:green"}
ARCH_STYLES = {
    "resnet50": "o-",
    "mobilenet": "s--",
    "vgg16": "^:",
    "resnet26": "D-.",
}  # marker, line


def figure2(table: pd.DataFrame) -> plt.Figure:
    """Counterpart of the paper's Figure 2: accuracy under attack after adversarial
    training, grouped by attack, one panel per architecture. Bars are ours with 95%
    intervals; black ticks are the paper's Table 1 values."""
    archs = list(dict.fromkeys(table["arch"]))
    attacks = list(dict.fromkeys(table["attack"]))
    regs = list(REG_COLORS)
    fig, axes = plt.subplots(
        1,
        len(archs),
        figsize=(4.2 * len(archs), 3.6),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    width = 0.8 / len(regs)
    for ax, arch in zip(axes[0], archs, strict=True):
        for j, reg in enumerate(regs):
            rows = table[(table.arch == arch) & (table.regularizer == reg)].set_index("attack")
            rows = rows.reindex(attacks)
            x = np.arange(len(attacks)) + (j - (len(regs) - 1) / 2) * width
            err = [rows.ours - rows.low, rows.high - rows.ours]
            bars = ax.bar(
                x, rows.ours, width, yerr=err, color=REG_COLORS[reg], label=reg, capsize=2
            )
            marks = zip(bars, rows.flagged.fillna(False), rows.untestable.fillna(""), strict=True)
            for bar, flagged, untestable in marks:
                if flagged:  # failed the gradient-masking audit
                    bar.set(hatch="xx", edgecolor="black")
                if untestable:  # collapsed, or too far below base: decides nothing
                    bar.set(alpha=0.3)
            ax.scatter(
                x,
                rows.paper,
                marker="_",
                color="black",
                s=60,
                zorder=3,
                label="paper" if j == 0 else None,
            )
        ax.set(xticks=np.arange(len(attacks)), xticklabels=attacks, title=arch)
    axes[0, 0].set_ylabel("accuracy under attack (%)")
    if table.flagged.any():
        axes[0, -1].bar(
            [0], [0], color="white", edgecolor="black", hatch="xx", label="audit failed"
        )
    if table.untestable.fillna("").astype(bool).any():
        axes[0, -1].bar([0], [0], color="gray", alpha=0.3, label="not testable (faded)")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    return fig


def figure3(histories: dict[str, list[dict]], arch: str = "vgg16") -> plt.Figure:
    """Counterpart of the paper's Figure 3: train and validation accuracy and loss per
    epoch, one line per regularizer."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), constrained_layout=True)
    panels = [
        ("train_acc", "train accuracy"),
        ("val_acc", "validation accuracy"),
        ("train_loss", "train loss (incl. penalty)"),
        ("val_loss", "validation loss"),
    ]
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        for reg, history in histories.items():
            ax.plot(
                [h["epoch"] for h in history],
                [h[key] for h in history],
                "o-",
                color=REG_COLORS[reg],
                label=reg,
                ms=3,
            )
        ax.set(xlabel="epoch", title=f"{arch}: {label}")
        if "loss" in key:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    return fig


def eps_sweep_figure(results: list[Result]) -> plt.Figure:
    """Undefended accuracy against the L-inf radius, FGSM and PGD, per cell."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for ax, attack in zip(axes, RADIUS_ATTACKS, strict=True):
        for r in results:
            sweep = r.metrics.eps_sweep
            ax.plot(
                np.array(sweep.eps) * 255,
                100 * np.array(getattr(sweep, attack)),
                ARCH_STYLES[r.params.arch],
                color=REG_COLORS[r.params.regularizer],
                ms=3,
                lw=1,
                label=_cell_label(r.params),
            )
        ax.set(xscale="log", xlabel="epsilon (x 1/255)", title=f"{attack}, undefended")
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=6, ncol=2)
    return fig


def sparsity_scatter(table: pd.DataFrame) -> plt.Figure:
    """Activation density against accuracy under PGD at 8/255 (undefended), one point
    per cell of ``strength_sweep.penalty_table``; a cell that failed the
    gradient-masking audit is ringed in red, one that is not testable is faded."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    for _, row in table.iterrows():
        ax.scatter(
            row["activation density"],
            row["pgd @ 8/255"],
            marker=ARCH_STYLES[row["arch"]][0],
            color=REG_COLORS[row["regularizer"]],
            s=40,
            edgecolors="red" if row["flagged"] else "none",
            linewidths=1.5,
            alpha=0.3 if row["untestable"] else 1.0,
        )
    if table["flagged"].any():
        ax.scatter([], [], color="white", edgecolors="red", label="audit failed")
    if table["untestable"].astype(bool).any():
        ax.scatter([], [], color="gray", alpha=0.3, label="not testable (faded)")
    for reg, color in REG_COLORS.items():
        ax.scatter([], [], color=color, label=reg)
    for arch in dict.fromkeys(table["arch"]):
        ax.scatter([], [], color="black", marker=ARCH_STYLES[arch][0], label=arch)
    ax.set(
        xlabel="activation density (%)",
        ylabel="accuracy under PGD, 8/255 (%)",
        title="Sparsity against robustness",
    )
    ax.legend(fontsize=7)
    return fig


def _cell_label(cell: AdversarialCell) -> str:
    c = "" if cell.regularizer == "base" else f" c={cell.penalty:g}"
    return f"{cell.arch} {cell.regularizer}{c}"


def _show_image(ax, image: torch.Tensor, title: str = "") -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _show_map(ax, heat: torch.Tensor, title: str = "", under: torch.Tensor | None = None) -> None:
    if under is not None:
        ax.imshow(under.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    ax.imshow(heat.cpu().numpy(), cmap="jet", alpha=0.5 if under is not None else 1.0)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def occlusion_figure(images, large, small, deltas, patch: int, patch_small: int) -> plt.Figure:
    """Like the paper's Figure 4: per image, the original, the large-patch map, its overlay
    and the small-patch map, with the SSD between the two maps as delta."""
    fig, axes = plt.subplots(len(images), 4, figsize=(7, 1.9 * len(images)), squeeze=False)
    for row, (image, a, b, delta) in enumerate(zip(images, large, small, deltas, strict=True)):
        _show_image(axes[row, 0], image, "image")
        _show_map(axes[row, 1], a, f"{patch}x{patch} patch")
        _show_map(axes[row, 2], a, "overlay", under=image)
        _show_map(axes[row, 3], b, f"{patch_small}x{patch_small} patch, Δ = {delta:.1f}")
    return fig


def gradcam_figure(images, blurred, original_maps, blurred_maps, deltas, sigma) -> plt.Figure:
    """Like the paper's Figure 5: the image and its Grad-CAM map, the blurred image and
    its map, with the SSD between the two maps as delta."""
    fig, axes = plt.subplots(len(images), 4, figsize=(7, 1.9 * len(images)), squeeze=False)
    rows = zip(images, blurred, original_maps, blurred_maps, deltas, strict=True)
    for row, (image, soft, a, b, delta) in enumerate(rows):
        _show_image(axes[row, 0], image, "image")
        _show_map(axes[row, 1], a, "Grad-CAM", under=image)
        _show_image(axes[row, 2], soft, f"blurred, sigma = {sigma}")
        _show_map(axes[row, 3], b, f"Grad-CAM, Δ = {delta:.1f}", under=soft)
    return fig


def sweep_figure(results: list[Result]) -> plt.Figure:
    """Mean SSD against the patch size (occlusion) and the blur sigma (Grad-CAM), one line
    per cell, so that a single pair of settings is not mistaken for a trend."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for r in results:
        style = ARCH_STYLES[r.params.arch]
        color = REG_COLORS[r.params.regularizer]
        for ax, key in zip(axes, ("patch_sweep", "sigma_sweep"), strict=True):
            sweep = getattr(r.metrics, key)
            xs = [float(k) for k in sweep]
            ax.plot(
                xs,
                [np.nan if v.mean is None else v.mean for v in sweep.values()],
                style,
                color=color,
                ms=3,
                lw=1,
                label=_cell_label(r.params),
            )
    axes[0].set(
        xlabel="patch side (pixels), compared with the 2x2 map",
        ylabel="mean SSD",
        title="Occlusion: patch size",
    )
    axes[1].set(xlabel="blur sigma (pixels)", ylabel="mean SSD", title="Grad-CAM: blur")
    axes[1].legend(fontsize=6, ncol=2)
    return fig


def penalty_figure(table: pd.DataFrame) -> plt.Figure:
    """Clean accuracy, robustness and sparsity against the penalty's strength c, one line
    per architecture and regularizer (mean over seeds); base models are horizontal
    lines, since they have no c. ``table`` is ``strength_sweep.penalty_table``."""
    panels = [
        ("clean", "clean accuracy (%)"),
        ("pgd @ 8/255", "accuracy under PGD, 8/255 (%)"),
        ("deepfool rho", "DeepFool robustness rho"),
        ("activation density", "activation density (%)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.6), constrained_layout=True)
    penalized = table[table.regularizer != "base"]
    means = penalized.groupby(["arch", "regularizer", "penalty"]).mean(numeric_only=True)
    base = table[table.regularizer == "base"].groupby("arch").mean(numeric_only=True)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for (arch, reg), rows in means.groupby(level=["arch", "regularizer"]):
            c = rows.index.get_level_values("penalty")
            ax.plot(
                c,
                rows[key],
                ARCH_STYLES[arch],
                color=REG_COLORS[reg],
                ms=4,
                lw=1,
                label=f"{arch} {reg}",
            )
        for arch, row in base.iterrows():
            ax.axhline(
                row[key],
                color=REG_COLORS["base"],
                ls=ARCH_STYLES[arch][1:],
                lw=1,
                label=f"{arch} base",
            )
        ax.set(xscale="log", xlabel="penalty strength c", title=label)
        if len(penalized):  # fixed limits: a panel may have nothing to plot (all NaN)
            ax.set_xlim(penalized.penalty.min() / 2, penalized.penalty.max() * 2)
    axes[-1].legend(fontsize=6, ncol=1, loc="best")
    return fig
