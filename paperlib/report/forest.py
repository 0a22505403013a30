"""The forest plot of a claim: each comparison's effect with its 95 % interval, the zero
line and the claim's margin, one panel per penalty strength judged."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from paperlib.report.judge import DISPLAY, Verdict

LABEL_COLOURS = {
    "reproduced": "tab:green",
    "helps, less than claimed": "tab:olive",
    "not reproduced": "tab:red",
    "underpowered": "tab:gray",
    "inconclusive": "tab:blue",
    "not testable": "lightgray",
}


def forest_plot(verdicts: list[Verdict], claim: str, endpoint: str | None = None) -> plt.Figure:
    """``claim``'s comparisons at each strength judged (the primary one first), on its
    primary endpoint or ``endpoint``. A grey bar runs from zero to each comparison's
    margin: an interval entirely right of the bar is a gain of at least the paper's
    size, one entirely left of its end rules that gain out. For a non-inferiority claim
    the bar runs from zero down to minus the margin, the loss the claim tolerates.
    Comparisons that decide nothing are listed with their reason in place of an
    interval."""
    panels = [
        v for v in verdicts if v.claim == claim and (endpoint is None or v.endpoint == endpoint)
    ]
    if endpoint is None and panels:
        panels = [v for v in panels if v.endpoint == panels[0].endpoint]
    rows = max([len(v.comparisons) for v in panels] + [1])
    fig, axes = plt.subplots(
        1,
        max(len(panels), 1),
        figsize=(4.2 * max(len(panels), 1), 0.32 * rows + 1.6),
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    for ax, v in zip(axes[0], panels, strict=False):
        _panel(ax, v)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no results for this claim", ha="center", va="center")
        axes[0][0].set_axis_off()
    return fig


def _panel(ax, v: Verdict) -> None:
    scale, unit = DISPLAY[v.unit]
    labels = [c["comparison"] for c in v.comparisons]
    y = np.arange(len(labels))[::-1]
    side = -1 if v.test == "non-inferiority" else 1
    for yi, c in zip(y, v.comparisons, strict=True):
        ax.barh(yi, side * scale * c["margin"], height=0.5, color="0.88", zorder=0)
        if "effect" in c and not c["untestable"]:
            effect, low, high = (scale * c[k] for k in ("effect", "low", "high"))
            ax.errorbar(
                effect,
                yi,
                xerr=[[effect - low], [high - effect]],
                fmt="o",
                ms=3,
                capsize=2,
                color="k",
            )
        else:
            # Written inside the panel and kept out of the layout: a long reason laid out
            # as part of the figure squeezed the axes to nothing.
            ax.text(
                0.02,
                yi,
                f"{c['untestable'] or 'missing'}"[:60],
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=7,
                color="0.4",
                clip_on=True,
                in_layout=False,
            )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(f"effect ({unit})" if unit else "effect")
    ax.set_title(f"{v.strength}: {v.verdict}", fontsize=9, color=LABEL_COLOURS.get(v.verdict, "k"))
