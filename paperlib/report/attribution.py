"""Table 2 and the verdicts of experiment 3, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.registry import PAPER_PENALTY, REGULARIZERS
from paperlib.report.claims_stability import METHODS, stability_verdicts
from paperlib.report.common import architectures_in, at_strength, rounded
from paperlib.report.paper import TABLE2
from paperlib.report.verdicts import (
    DEFAULT_RULES,
)
from paperlib.run.results import Result


def pooled(
    results: list[Result], reg: str, key: str, penalty: float = PAPER_PENALTY
) -> np.ndarray | None:
    """Per-image values of one regularizer at penalty strength ``penalty`` (the paper's
    by default), averaged over architectures and seeds.

    Every cell saw the same images, so the average is taken image by image. None when
    an architecture of the grid has no cell of ``reg``, so that a partial grid never
    looks complete.

    Images whose maps were flat in a cell (stored as None) are averaged over the other
    cells, and stay NaN where every cell left them out.
    """
    results = at_strength(results, penalty)
    runs = [r for r in results if r.params.regularizer == reg]
    if not runs or {r.params.arch for r in runs} != set(architectures_in(results)):
        return None
    values = np.array([r.per_image[key] for r in runs], dtype=float)  # None -> NaN
    kept = (~np.isnan(values)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(kept > 0, np.nansum(values, axis=0) / np.maximum(kept, 1), np.nan)


def _mean_std(values: np.ndarray | None) -> str:
    """Mean ± std over the images with informative maps, and how many were left out."""
    if values is None:
        return "missing"
    kept = values[~np.isnan(values)]
    left_out = len(values) - len(kept)
    note = f" ({left_out} flat left out)" if left_out else ""
    if not len(kept):
        return f"no informative maps{note}"
    return f"{kept.mean():.2f} ± {kept.std():.2f}{note}"


def table2(results: list[Result]) -> pd.DataFrame:
    """SSD mean ± std per method and regularizer, pooled over architectures, with ours
    beside the paper's."""
    rows = []
    for method, key in METHODS.items():
        row = {"method": method}
        for reg in REGULARIZERS:
            values = pooled(results, reg, key)
            paper_mean, paper_std = TABLE2[method][reg]
            row[f"{reg} (ours)"] = _mean_std(values)
            row[f"{reg} (paper)"] = f"{paper_mean:.2f} ± {paper_std:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def table2_beside(by_profile: dict[str, list[Result]]) -> pd.DataFrame:
    """Table 2 of several profiles side by side (SSD mean ± std), then the paper's
    column: one row per method x regularizer."""
    index = pd.MultiIndex.from_product([list(METHODS), REGULARIZERS])
    columns = {}
    for profile, results in by_profile.items():
        cells = []
        for method, reg in index:
            values = pooled(results, reg, METHODS[method])
            cells.append(_mean_std(values))
        columns[f"ours ({profile})"] = cells
    columns["paper (published)"] = ["{:.2f} ± {:.2f}".format(*TABLE2[m][r]) for m, r in index]
    return pd.DataFrame(columns, index=index.set_names(["method", "regularizer"]))


def per_architecture(results: list[Result]) -> pd.DataFrame:
    """Mean SSD and Spearman correlation per cell, for the architecture-level view."""
    rows = []
    for r in results:
        m = r.metrics
        rows.append(
            {
                "arch": r.params.arch,
                "regularizer": r.params.regularizer,
                "penalty": r.params.penalty,
                "seed": r.params.seed,
                "occlusion SSD": m.occlusion_ssd.mean,
                "Grad-CAM SSD": m.gradcam_ssd.mean,
                "occlusion Spearman": m.occlusion_spearman.mean,
                "Grad-CAM Spearman": m.gradcam_spearman.mean,
                "occlusion top-k shared": m.occlusion_topk.mean,
                "Grad-CAM top-k shared": m.gradcam_topk.mean,
                "Grad-CAM max-sensitivity": m.gradcam_sensitivity.mean,
                # maps too flat to compare (constant or float noise), left out above
                "occlusion maps left out": m.occlusion_ssd.left_out,
                "Grad-CAM maps left out": m.gradcam_ssd.left_out,
                "accuracy on the images": m.accuracy_on_images,
                "clean accuracy": m.clean_accuracy,
            }
        )
    columns = ["arch", "regularizer", "penalty", "seed"]  # named even without results
    return rounded(pd.DataFrame(rows, columns=list(rows[0]) if rows else columns), 3)


def attribution_verdicts(results, rules=DEFAULT_RULES, penalty=None):
    """Experiment 3's claims (``claims_stability.stability_verdicts``): at each
    regularizer's primary strength, or at ``penalty`` as a secondary verdict."""
    return stability_verdicts(results, rules, penalty)
