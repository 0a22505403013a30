"""The verdict rule, once for every experiment: which models may decide a claim, how two
of them are compared, and how a family of comparisons becomes a verdict.

- **Testable.** A model decides nothing when it has collapsed: its clean accuracy is
  below a floor, or the entropy of its predicted classes is (one class predicted for
  nearly every image), or, where it is compared with its base model, it lost more than
  a margin of clean accuracy. Thresholds come from the profile's ``testable`` section.
- **Comparisons.** Outcomes per image on the same images are compared with an exact
  test: McNemar's (a binomial test on the images where the two differ) when each side
  has one seed; with several seeds, the hierarchical bootstrap (seeds, then images)
  gives the interval and a two-sided bootstrap p-value. Without per-image pairing (the
  paper's own numbers) Fisher's exact test compares the two counts.
- **A family.** A claim about "nearly all cases" or "every architecture" is a family
  of comparisons. Holm's step-down correction keeps its family-wise error at 5%; a
  comparison counts as a gain or a loss only when it survives the correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import (
    RESAMPLES,
    hierarchical_ci,
    hierarchical_draws,
    holm,
    mcnemar_p,
    wilson_interval,
)

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_TESTABLE = "not testable"  # every comparison of the claim involves a collapsed model
ALPHA = 0.05  # family-wise, per claim (Holm)
GAIN, LOSS, TIE = "gain", "loss", "tie"
DEFAULT_RULES = EligibilityConfig()  # the profiles' thresholds, unless a page passes its own


@dataclass(frozen=True)
class Verdict:
    claim: str
    where: str
    statement: str
    evidence: str
    verdict: str


# --- comparing two models -------------------------------------------------------------


def accuracy_interval(runs) -> tuple[float, float]:
    """95% interval of a mean accuracy over seeds (``runs``: one 0/1 array per seed).

    The hierarchical bootstrap, widened to contain the Wilson score interval of the
    pooled count: a bootstrap of 0 out of 200 is the point [0, 0], which claims a
    certainty that 200 images cannot give; Wilson's interval never collapses at 0 or 1.
    """
    low, high = hierarchical_ci(runs)
    wilson = wilson_interval(int(np.sum(runs)), int(np.size(runs)))
    return min(low, wilson[0]), max(high, wilson[1])


def compare(runs, baseline) -> dict:
    """``runs`` against ``baseline`` (each one array of per-image values per seed, the
    same images throughout): the difference of means, its 95% interval and a two-sided
    p-value (exact McNemar for one binary seed each, else the hierarchical bootstrap)."""
    runs, baseline = np.asarray(runs, dtype=float), np.asarray(baseline, dtype=float)
    diff = float(runs.mean() - baseline.mean())
    low, high = hierarchical_ci(runs, baseline)
    binary = set(np.unique(runs)) | set(np.unique(baseline)) <= {0.0, 1.0}
    if len(runs) == 1 and len(baseline) == 1 and binary:
        p = mcnemar_p(runs[0].astype(bool), baseline[0].astype(bool))
    else:
        draws = hierarchical_draws(runs, baseline)
        tail = min((draws <= 0).mean(), (draws >= 0).mean())
        p = float(min(1.0, 2 * max(tail, 1 / (RESAMPLES + 1))))
    return {"diff": diff, "low": low, "high": high, "p": p}


def compare_counts(correct_a: int, correct_b: int, n: int) -> dict:
    """Two accuracies measured on ``n`` images each without per-image pairing (the
    paper's published numbers): difference, Wilson-based interval (Newcombe's hybrid)
    and Fisher's exact two-sided p-value."""
    from scipy.stats import fisher_exact  # here: SciPy is slow to import

    pa, pb = correct_a / n, correct_b / n
    la, ha = wilson_interval(correct_a, n)
    lb, hb = wilson_interval(correct_b, n)
    diff = pa - pb
    low = diff - np.sqrt((pa - la) ** 2 + (hb - pb) ** 2)
    high = diff + np.sqrt((ha - pa) ** 2 + (pb - lb) ** 2)
    table = [[correct_a, n - correct_a], [correct_b, n - correct_b]]
    return {
        "diff": diff,
        "low": float(low),
        "high": float(high),
        "p": float(fisher_exact(table)[1]),
    }


# --- from a family of comparisons to a verdict ---------------------------------------


def outcomes(comparisons: list[dict], alpha: float = ALPHA) -> list[str]:
    """GAIN, LOSS or TIE for each testable comparison (higher ``diff`` is a gain), after
    Holm's correction over the family; NOT_TESTABLE where ``untestable`` says why."""
    testable = [c for c in comparisons if not c.get("untestable")]
    significant = iter(holm([c["p"] for c in testable], alpha))
    out = []
    for c in comparisons:
        if c.get("untestable"):
            out.append(NOT_TESTABLE)
        elif next(significant):
            out.append(GAIN if c["diff"] > 0 else LOSS)
        else:
            out.append(TIE)
    return out


def family_verdict(marks: list[str], share: float = 1.0) -> tuple[str, str]:
    """The one rule. ``marks``: the outcomes of a claim's comparisons, oriented so that
    GAIN supports the claim. Reproduced when at least ``share`` of the testable ones are
    significant gains; not reproduced when the significant losses alone rule that out
    (even if every comparison within noise were a gain, fewer than ``share`` would be);
    otherwise inconclusive; not testable when none is testable. Returns the verdict and
    a sentence counting the outcomes."""
    testable = [m for m in marks if m != NOT_TESTABLE]
    gains, losses = testable.count(GAIN), testable.count(LOSS)
    counts = (
        f"{len(testable)} testable comparison(s): {gains} significant gain(s), {losses} "
        f"significant loss(es), {len(testable) - gains - losses} within noise (Holm, "
        f"family-wise {ALPHA:g}); {len(marks) - len(testable)} not testable"
    )
    if not testable:
        return NOT_TESTABLE, counts
    if gains >= share * len(testable):
        return REPRODUCED, counts
    if len(testable) - losses < share * len(testable):
        return NOT_REPRODUCED, counts
    return INCONCLUSIVE, counts
