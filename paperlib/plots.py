"""Figures, drawn from the tables in ``paperlib.report``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from paperlib.report import SPARSE_DENSITY


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
