"""What every results page shares about verdicts: the verdict record (``judge.Verdict``),
the profiles' default testability thresholds, and the interval of an accuracy over
seeds that the tables print. The rule itself is ``paperlib.report.judge``'s; which models
may decide a claim is ``paperlib.core.eligibility``'s."""

from __future__ import annotations

import numpy as np

from paperlib.core.settings import EligibilityConfig
from paperlib.core.stats import hierarchical_ci, wilson_interval
from paperlib.report.judge import Verdict

DEFAULT_RULES = EligibilityConfig()  # the profiles' thresholds, unless a page passes its own

__all__ = ["DEFAULT_RULES", "Verdict", "accuracy_interval"]


def accuracy_interval(runs) -> tuple[float, float]:
    """95% interval of a mean accuracy over seeds (``runs``: one 0/1 array per seed).

    The hierarchical bootstrap, widened to contain the Wilson score interval of the
    pooled count: a bootstrap of 0 out of 200 is the point [0, 0], which claims a
    certainty that 200 images cannot give; Wilson's interval never collapses at 0 or 1.
    """
    low, high = hierarchical_ci(runs)
    wilson = wilson_interval(int(np.sum(runs)), int(np.size(runs)))
    return min(low, wilson[0]), max(high, wilson[1])
