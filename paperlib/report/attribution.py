"""Table 2 and the verdicts of experiment 3, computed from its results JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.eligibility import untestable_reason
from paperlib.core.registry import PAPER_PENALTY, REGULARIZERS
from paperlib.core.settings import EligibilityConfig
from paperlib.report.common import architectures_in, at_strength, rounded
from paperlib.report.paper import CLAIMS, TABLE2
from paperlib.report.verdicts import (
    DEFAULT_RULES,
    INCONCLUSIVE,
    NOT_TESTABLE,
    Verdict,
    compare,
    family_verdict,
    outcomes,
)

METHODS = {"occlusion": "occlusion_ssd", "gradcam": "gradcam_ssd"}


def pooled(
    results: list[dict], reg: str, key: str, penalty: float = PAPER_PENALTY
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
    runs = [r for r in results if r["params"]["regularizer"] == reg]
    if not runs or {r["params"]["arch"] for r in runs} != set(architectures_in(results)):
        return None
    values = np.array([r["per_image"][key] for r in runs], dtype=float)  # None -> NaN
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


def table2(results: list[dict]) -> pd.DataFrame:
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


def table2_beside(by_profile: dict[str, list[dict]]) -> pd.DataFrame:
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
                "occlusion top-k shared": m.get("occlusion_topk", {}).get("mean"),
                "Grad-CAM top-k shared": m.get("gradcam_topk", {}).get("mean"),
                "Grad-CAM max-sensitivity": m.get("gradcam_sensitivity", {}).get("mean"),
                # maps too flat to compare (constant or float noise), left out above
                "occlusion maps left out": m["occlusion_ssd"].get("left_out", 0),
                "Grad-CAM maps left out": m["gradcam_ssd"].get("left_out", 0),
                "accuracy on the images": m["accuracy_on_images"],
                "clean accuracy": m["clean_accuracy"],
            }
        )
    return rounded(pd.DataFrame(rows), 3)


def _evidence(results, key: str, penalty: float = PAPER_PENALTY) -> str:
    parts = []
    for reg in REGULARIZERS:
        values = pooled(results, reg, key, penalty)
        if values is None:
            parts.append(f"{reg} missing")
        elif np.isnan(values).all():
            parts.append(f"{reg} no informative maps")
        else:
            parts.append(f"{reg} {np.nanmean(values):.2f}")
    return "mean SSD: " + ", ".join(parts)


def untestable(
    results: list[dict], rules: EligibilityConfig = DEFAULT_RULES, penalty: float = PAPER_PENALTY
) -> list[str]:
    """Why models at penalty strength ``penalty`` (the paper's by default) may not decide
    a claim, one line per architecture and regularizer that is not testable
    (``verdicts.untestable_reason``; base models only when collapsed). A model that
    predicts one class has constant maps, whose SSD is 0 however unstable the model is."""
    results = at_strength(results, penalty)

    def state(arch, reg):
        runs = [
            r["metrics"]
            for r in results
            if r["params"]["arch"] == arch and r["params"]["regularizer"] == reg
        ]
        if not runs:
            return None
        counts = np.sum([m["predicted_counts"] for m in runs], axis=0)
        return float(np.mean([m["clean_accuracy"] for m in runs])), counts

    reasons = []
    for arch in architectures_in(results):
        base = state(arch, "base")
        for reg in REGULARIZERS:
            model = state(arch, reg)
            if model is None:
                continue
            against = None if reg == "base" or base is None else base[0]
            reason = untestable_reason(*model, rules, base_accuracy=against)
            if reason:
                reasons.append(f"{arch} {reg}: {reason}")
    return reasons


# Each claim is a family of comparisons (method, model, rival): it holds when the model's
# maps move significantly less than the rival's in every comparison of the family.
STABILITY_CLAIMS = {
    "l1-stablest-occlusion": [("occlusion", "l1", o) for o in REGULARIZERS if o != "l1"],
    "regularized-stabler-gradcam": [("gradcam", r, "base") for r in REGULARIZERS[1:]],
    "elastic-most-stable": [
        (m, "elastic", o) for m in METHODS for o in REGULARIZERS if o != "elastic"
    ],
}


def attribution_verdicts(
    results: list[dict], rules: EligibilityConfig = DEFAULT_RULES, penalty: float = PAPER_PENALTY
) -> list[Verdict]:
    """The claims of experiment 3 at penalty strength ``penalty`` (the paper's by
    default). Each compares regularizers with each other (or with base), so a single
    untestable model makes all three not testable."""
    lost = untestable(results, rules, penalty)

    def evidence(pairs):
        methods = dict.fromkeys(method for method, _, _ in pairs)
        return "; ".join(f"{m}: {_evidence(results, METHODS[m], penalty)}" for m in methods)

    if lost:
        reason = f"not testable: {'; '.join(lost)}. "
        return [
            Verdict(
                claim,
                *CLAIMS[claim],
                reason + _evidence(results, METHODS[pairs[0][0]], penalty),
                NOT_TESTABLE,
            )
            for claim, pairs in STABILITY_CLAIMS.items()
        ]

    def ours(method: str, model: str, rival: str) -> dict | None:
        key = METHODS[method]
        a, b = pooled(results, model, key, penalty), pooled(results, rival, key, penalty)
        if a is None or b is None:
            return None
        both = ~np.isnan(a) & ~np.isnan(b)  # images with informative maps in both
        return compare([b[both]], [a[both]])  # > 0: model steadier

    return _judge(ours, evidence)


def paper_verdicts() -> list[Verdict]:
    """The same claims judged from the paper's own Table 2 (mean and standard deviation
    of the SSD over 1,000 images per regularizer, per-image values unpublished, so the
    comparisons are unpaired: Welch's t-test)."""
    from scipy.stats import ttest_ind_from_stats  # here: SciPy is slow to import

    def paper(method: str, model: str, rival: str) -> dict:
        (ma, sa), (mb, sb) = TABLE2[method][model], TABLE2[method][rival]
        p = ttest_ind_from_stats(mb, sb, 1000, ma, sa, 1000, equal_var=False).pvalue
        return {"diff": mb - ma, "p": float(p)}

    def evidence(pairs):
        methods = dict.fromkeys(method for method, _, _ in pairs)
        return "; ".join(
            f"{m}: paper's mean SSD "
            + ", ".join(f"{reg} {TABLE2[m][reg][0]:.2f}" for reg in REGULARIZERS)
            for m in methods
        )

    return _judge(paper, evidence)


def _judge(compare_pair, evidence) -> list[Verdict]:
    """``compare_pair(method, model, rival)`` -> ``{"diff", "p"}`` (diff > 0: the model's
    maps move less) or None when cells are missing; the one rule of ``verdicts``."""
    found = []
    for claim, pairs in STABILITY_CLAIMS.items():
        comparisons = [compare_pair(*pair) for pair in pairs]
        if any(c is None for c in comparisons):
            verdict, counts = INCONCLUSIVE, "cells missing"
        else:
            verdict, counts = family_verdict(outcomes(comparisons), share=1.0)
        found.append(Verdict(claim, *CLAIMS[claim], f"{evidence(pairs)}; {counts}", verdict))
    return found
