"""Which models may decide a claim: a model that collapsed (near-chance accuracy, or one
class predicted for nearly every image) decides nothing about robustness or stability,
and neither does one that lost too much clean accuracy against its base model.
Thresholds come from a profile's ``testable`` section (``settings.EligibilityConfig``).
"""

from __future__ import annotations

import numpy as np

from paperlib.core.settings import EligibilityConfig


def prediction_entropy(counts) -> float:
    """Entropy of a predicted-class histogram, normalized to [0, 1]: 0 when one class
    takes every image, 1 when every class is predicted equally often."""
    counts = np.asarray(counts, dtype=float)
    shares = counts[counts > 0] / counts.sum()
    # abs(): a single class gives -0.0, which would print as "-0.00".
    return abs(float((shares * np.log(shares)).sum() / np.log(len(counts))))


def collapse_reason(accuracy: float, counts, cfg: EligibilityConfig) -> str:
    """Why a model has collapsed ("" when it has not). ``accuracy`` on [0, 1];
    ``counts``: how many test images it predicted as each class."""
    counts = np.asarray(counts)
    entropy = prediction_entropy(counts)
    if entropy < cfg.min_prediction_entropy:
        share = counts.max() / counts.sum()
        return (
            f"collapsed: one class predicted for {100 * share:.0f} % of images "
            f"(prediction entropy {entropy:.2f} < {cfg.min_prediction_entropy:g})"
        )
    if accuracy < cfg.min_accuracy:
        return f"near chance: clean accuracy {100 * accuracy:.1f} % < {100 * cfg.min_accuracy:g} %"
    return ""


def untestable_reason(
    accuracy: float, counts, cfg: EligibilityConfig, base_accuracy: float | None = None
) -> str:
    """Why a model may not decide a claim ("" when it may): collapsed, or, against its
    base model, more than ``cfg.max_accuracy_drop`` points less accurate."""
    reason = collapse_reason(accuracy, counts, cfg)
    if reason or base_accuracy is None:
        return reason
    drop = 100 * (base_accuracy - accuracy)
    if drop > cfg.max_accuracy_drop:
        return (
            f"lost {drop:.1f} points of clean accuracy against base (> {cfg.max_accuracy_drop:g})"
        )
    return ""
