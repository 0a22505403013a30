"""Table 2 and the verdicts of experiment 3, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.config import REGULARIZER_NAMES
from paperlib.paper import CLAIMS, TABLE2
from paperlib.report import (
    ACCURACY_KEPT,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Verdict,
    architectures_in,
    at_paper_strength,
    rounded,
)
from paperlib.stats import paired_difference_ci

METHODS = {"occlusion": "occlusion_ssd", "gradcam": "gradcam_ssd"}


def pooled(results: list[dict], reg: str, key: str) -> np.ndarray | None:
    """Per-image values of one regularizer at the paper's strength, averaged over
    architectures and seeds.

    Every cell saw the same images, so the average is taken image by image. None when
    an architecture of the grid has no cell of ``reg``, so that a partial grid never
    looks complete.
    """
    results = at_paper_strength(results)
    runs = [r for r in results if r["params"]["regularizer"] == reg]
    if not runs or {r["params"]["arch"] for r in runs} != set(architectures_in(results)):
        return None
    return np.mean([r["per_image"][key] for r in runs], axis=0)


def _mean_std(values: np.ndarray | None) -> str:
    return "missing" if values is None else f"{values.mean():.2f} ± {values.std():.2f}"


def table2(results: list[dict]) -> pd.DataFrame:
    """SSD mean ± std per method and regularizer, pooled over architectures, with ours
    beside the paper's."""
    rows = []
    for method, key in METHODS.items():
        row = {"method": method}
        for reg in REGULARIZER_NAMES:
            values = pooled(results, reg, key)
            paper_mean, paper_std = TABLE2[method][reg]
            row[f"{reg} (ours)"] = _mean_std(values)
            row[f"{reg} (paper)"] = f"{paper_mean:.2f} ± {paper_std:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def table2_beside(by_profile: dict[str, list[dict]]) -> pd.DataFrame:
    """Table 2 of several profiles side by side (SSD mean ± std), then the paper's
    column: one row per method x regularizer."""
    index = pd.MultiIndex.from_product([list(METHODS), REGULARIZER_NAMES])
    columns = {}
    for profile, results in by_profile.items():
        cells = []
        for method, reg in index:
            values = pooled(results, reg, METHODS[method])
            cells.append(_mean_std(values))
        columns[f"ours ({profile})"] = cells
    columns["paper (published)"] = ["{:.2f} ± {:.2f}".format(*TABLE2[m][r]) for m, r in index]
    return pd.DataFrame(columns, index=index.set_names(["method", "regularizer"]))


def per_architecture(results: list[dict]) -> pd.DataFrame:
    """Mean SSD and Spearman correlation per cell, for the architecture-level view."""
    rows = []
    for r in results:
        m = r["metrics"]
        rows.append(
            {
                "arch": r["params"]["arch"],
                "regularizer": r["params"]["regularizer"],
                "penalty": r["params"]["penalty"],
                "seed": r["params"]["seed"],
                "occlusion SSD": m["occlusion_ssd"]["mean"],
                "Grad-CAM SSD": m["gradcam_ssd"]["mean"],
                "occlusion Spearman": m["occlusion_spearman"]["mean"],
                "Grad-CAM Spearman": m["gradcam_spearman"]["mean"],
                "accuracy on the images": m["accuracy_on_images"],
                "clean accuracy": m["clean_accuracy"],
            }
        )
    return rounded(pd.DataFrame(rows), 3)


def _difference(results, reg_a: str, reg_b: str, key: str) -> tuple[float, float] | None:
    """95% paired interval of mean(a) - mean(b); None when either is missing."""
    a, b = pooled(results, reg_a, key), pooled(results, reg_b, key)
    return None if a is None or b is None else paired_difference_ci(a, b)


def _lowest(results, reg: str, key: str) -> str:
    """Is ``reg`` significantly lower (more stable) than every other regularizer?"""
    intervals = [
        _difference(results, reg, other, key) for other in REGULARIZER_NAMES if other != reg
    ]
    if any(i is None for i in intervals):
        return INCONCLUSIVE
    if all(high < 0 for _, high in intervals):
        return REPRODUCED
    if any(low > 0 for low, _ in intervals):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _evidence(results, key: str) -> str:
    parts = []
    for reg in REGULARIZER_NAMES:
        values = pooled(results, reg, key)
        parts.append(f"{reg} {'missing' if values is None else f'{values.mean():.2f}'}")
    return "mean SSD: " + ", ".join(parts)


def untestable(results: list[dict]) -> list[str]:
    """The regularizers (at the paper's strength) that lost more than ``ACCURACY_KEPT``
    points of clean accuracy against base on some architecture. A model that predicts
    one class has constant maps, whose SSD is 0 however unstable the model is."""
    results = at_paper_strength(results)

    def clean(arch, reg):
        runs = [
            r["metrics"]["clean_accuracy"]
            for r in results
            if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
        ]
        return 100 * float(np.mean(runs)) if runs else None

    lost = []
    for reg in REGULARIZER_NAMES[1:]:
        for arch in architectures_in(results):
            base, other = clean(arch, "base"), clean(arch, reg)
            if base is not None and other is not None and base - other > ACCURACY_KEPT:
                lost.append(reg)
                break
    return lost


def verdicts(results: list[dict]) -> list[Verdict]:
    """Each claim compares every regularizer with the others (or with base), so a single
    untestable regularizer makes all three not testable."""
    lost = untestable(results)
    if lost:
        reason = (
            f"not testable: {', '.join(lost)} lost more than {ACCURACY_KEPT:g} points of "
            "clean accuracy against base; "
        )
        return [
            Verdict(claim, *CLAIMS[claim], reason + _evidence(results, key), NOT_TESTABLE)
            for claim, key in (
                ("l1-stablest-occlusion", "occlusion_ssd"),
                ("regularized-stabler-gradcam", "gradcam_ssd"),
                ("elastic-most-stable", "gradcam_ssd"),
            )
        ]
    where, statement = CLAIMS["l1-stablest-occlusion"]
    occlusion = Verdict(
        "l1-stablest-occlusion",
        where,
        statement,
        _evidence(results, "occlusion_ssd"),
        _lowest(results, "l1", "occlusion_ssd"),
    )
    where, statement = CLAIMS["regularized-stabler-gradcam"]
    vs_base = [_difference(results, reg, "base", "gradcam_ssd") for reg in REGULARIZER_NAMES[1:]]
    if any(i is None for i in vs_base):
        gradcam = INCONCLUSIVE
    elif all(high < 0 for _, high in vs_base):
        gradcam = REPRODUCED
    elif any(low > 0 for low, _ in vs_base):  # a regularizer significantly less stable
        gradcam = NOT_REPRODUCED
    else:
        gradcam = INCONCLUSIVE
    gradcam_verdict = Verdict(
        "regularized-stabler-gradcam", where, statement, _evidence(results, "gradcam_ssd"), gradcam
    )
    where, statement = CLAIMS["elastic-most-stable"]
    both = [_lowest(results, "elastic", key) for key in METHODS.values()]
    elastic = (
        REPRODUCED
        if all(v == REPRODUCED for v in both)
        else NOT_REPRODUCED
        if NOT_REPRODUCED in both
        else INCONCLUSIVE
    )
    elastic_verdict = Verdict(
        "elastic-most-stable",
        where,
        statement,
        "elastic net lowest for occlusion: " + both[0] + "; for Grad-CAM: " + both[1],
        elastic,
    )
    return [occlusion, gradcam_verdict, elastic_verdict]
