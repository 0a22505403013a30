"""Bootstrap intervals. Every comparison in the book carries a 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


def bootstrap_ci(
    values, *, seed: int = 0, resamples: int = RESAMPLES, statistic=np.mean
) -> tuple[float, float]:
    """Percentile 95% interval of ``statistic`` (the mean) of ``values``, resampling items."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return _percentiles(statistic(values[picks], axis=1))


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def pack_bits(flags) -> str:
    """Per-image booleans as a compact '0'/'1' string for the results JSON."""
    return "".join("1" if f else "0" for f in np.asarray(flags, dtype=bool))


def pack_outcomes(outcomes):
    """:func:`pack_bits` over per-image outcomes held in mappings and lists, which keep
    their shape: how a cell stores every outcome it measured in one call."""
    if isinstance(outcomes, dict):
        return {k: pack_outcomes(v) for k, v in outcomes.items()}
    if isinstance(outcomes, list):
        return [pack_outcomes(v) for v in outcomes]
    return pack_bits(outcomes)


def unpack_bits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def hierarchical_ci(
    runs, baseline=None, *, seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """95% interval of a mean over seeds, resampling seeds and then images.

    ``runs`` holds one array of per-image values per seed (the same images in every
    array). Each resample draws seeds with replacement, then one set of image indices,
    and averages. With ``baseline`` (another list of per-seed arrays over the same
    images) it is the interval of mean(runs) - mean(baseline): seeds are drawn for each
    group separately, and the images once for both, which keeps the pairing by image.
    With one seed it reduces to the ordinary bootstrap over images.
    """
    return _percentiles(hierarchical_draws(runs, baseline, seed=seed, resamples=resamples))


def hierarchical_draws(
    runs, baseline=None, *, seed: int = 0, resamples: int = RESAMPLES
) -> np.ndarray:
    """The bootstrap distribution behind ``hierarchical_ci``: one mean (or difference of
    means) per resample."""
    groups = [np.asarray(runs, dtype=float)] + (
        [] if baseline is None else [np.asarray(baseline, dtype=float)]
    )
    n_images = groups[0].shape[1]
    if any(g.ndim != 2 or g.shape[1] != n_images for g in groups):
        raise ValueError("every seed's values must cover the same images")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n_images, size=(resamples, n_images))
    means = []
    for g in groups:
        seeds = rng.integers(0, len(g), size=(resamples, len(g)))
        # For each resample: average the picked seeds' values, then the picked images.
        per_image = g[seeds].mean(axis=1)  # (resamples, n_images)
        means.append(np.take_along_axis(per_image, images, axis=1).mean(axis=1))
    return means[0] - means[1] if baseline is not None else means[0]


def mcnemar_p(a, b, alternative: str = "two-sided") -> float:
    """Exact McNemar p-value for paired binary outcomes ``a`` and ``b``: a binomial test
    on the images where they differ. ``alternative="greater"``: that ``a`` is correct
    more often than ``b``."""
    from scipy.stats import binomtest  # here: SciPy is slow to import

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    up, down = int((a & ~b).sum()), int((~a & b).sum())
    if up + down == 0:
        return 1.0
    return float(binomtest(up, up + down, 0.5, alternative=alternative).pvalue)


# --- the block analysis: arms compared over paired seeds, images nested in seeds --------


@dataclass(frozen=True)
class BlockEffect:
    """The mean of a seeds x images table of paired differences (arm minus rival, the
    same seed and the same image on both sides), with a standard error that carries both
    the seed-to-seed and the image-to-image variance.

    ``seed_variance`` says where the seed term came from: "estimated" from two or more
    seeds, "prior" (a stated value, with a single seed or a table without spread) or
    "none" (no seed term).
    """

    effect: float
    se: float
    df: float
    seeds: int
    images: int
    seed_variance: str = "estimated"

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """Two-sided interval of the effect (Student's t with ``df`` degrees of freedom)."""
        half = _t_quantile(0.5 + confidence / 2, self.df) * self.se
        return self.effect - half, self.effect + half

    def p_above(self, value: float) -> float:
        """One-sided p-value against "the effect is at most ``value``"."""
        return (
            _t_tail((self.effect - value) / self.se, self.df)
            if self.se > 0
            else _step(self.effect > value)
        )

    def p_below(self, value: float) -> float:
        """One-sided p-value against "the effect is at least ``value``"."""
        return (
            _t_tail((value - self.effect) / self.se, self.df)
            if self.se > 0
            else _step(self.effect < value)
        )


def block_effect(differences, prior_seed_variance: float | None = None) -> BlockEffect:
    """Analyse paired differences ``differences[seed, image]`` as a randomized block:
    seeds and images are both random draws, crossed (every seed saw every image).

    With two-way mean squares MS_seed, MS_image and MS_resid, the variance of the grand
    mean is (MS_seed + MS_image - MS_resid) / (S n), with Satterthwaite's degrees of
    freedom; an image component estimated below zero is set to zero. With
    one seed the seed term cannot be estimated: ``prior_seed_variance`` (the variance of
    one seed's mean difference about the true effect) stands in for it, and without a
    prior it is left out, which makes the interval too narrow (``seed_variance`` says
    "none"). With one image per seed (a scalar endpoint per seed) it is a paired t-test
    over seeds. Where every difference is the same, the data cannot estimate any
    variance and the prior, where given, stands in for the seed term. Columns with a NaN
    (an image without a value in some seed) are dropped.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    d = d[:, ~np.isnan(d).any(axis=0)]
    seeds, images = d.shape
    if images == 0:
        raise ValueError("no image has a value in every seed")
    effect = float(d.mean())
    if seeds == 1:
        within = d.var(ddof=1) / images if images > 1 else 0.0
        if prior_seed_variance is None:
            return BlockEffect(
                effect, float(np.sqrt(within)), max(images - 1, 1), 1, images, "none"
            )
        se = float(np.sqrt(within + prior_seed_variance))
        return BlockEffect(effect, se, max(images - 1, 1), 1, images, "prior")
    if prior_seed_variance is not None and np.ptp(d) == 0:
        # Every seed gave the same difference on every image (an endpoint counted in
        # whole epochs, or an attack that always succeeds): the table has no spread to
        # estimate a variance from, and a zero-width interval would claim certainty the
        # design does not have. The prior stands in for the seed term, as with one seed.
        se = float(np.sqrt(prior_seed_variance / seeds))
        return BlockEffect(effect, se, seeds - 1, seeds, images, "prior")
    if images == 1:
        se = float(d[:, 0].std(ddof=1) / np.sqrt(seeds))
        return BlockEffect(effect, se, seeds - 1, seeds, 1)
    seed_means, image_means = d.mean(axis=1), d.mean(axis=0)
    ms_seed = images * np.sum((seed_means - effect) ** 2) / (seeds - 1)
    ms_image = seeds * np.sum((image_means - effect) ** 2) / (images - 1)
    resid = d - seed_means[:, None] - image_means[None, :] + effect
    ms_resid = np.sum(resid**2) / ((seeds - 1) * (images - 1))
    # Var(mean) = sigma2_seed / S + sigma2_image / n + sigma2_resid / (S n): MS_seed
    # estimates S n times the first and last terms, and MS_image - MS_resid S n times the
    # image term (set to zero where it comes out negative). The seed term is always kept.
    terms = [(ms_seed, seeds - 1)]
    if ms_image > ms_resid:
        terms += [(ms_image, images - 1), (-ms_resid, (seeds - 1) * (images - 1))]
    total = sum(ms for ms, _ in terms)
    df = total**2 / sum(ms**2 / k for ms, k in terms) if total > 0 else seeds - 1
    if seeds == 2:
        # Satterthwaite's df leans on a seed term with one degree of freedom: in
        # simulation its intervals covered 89 %, so two seeds keep that one df (99 %).
        df = 1.0
    return BlockEffect(
        effect, float(np.sqrt(max(total, 0.0) / (seeds * images))), float(df), seeds, images
    )


def design_se(seed_variance: float, image_variance: float, seeds: int, images: int) -> float:
    """Standard error of a paired mean difference for a design of ``seeds`` x ``images``:
    ``seed_variance`` is the variance of one seed's mean difference over a very large image
    set, ``image_variance`` the variance of one image's difference within a seed."""
    return float(np.sqrt(seed_variance / seeds + image_variance / (seeds * images)))


def variance_components(differences) -> tuple[float, float]:
    """(seed variance, per-image variance) of a seeds x images table of differences, in
    the sense of ``design_se``; the seed variance is 0 with one seed (unknown)."""
    d = np.asarray(differences, dtype=float)
    d = d[:, ~np.isnan(d).any(axis=0)]
    seeds, images = d.shape
    within = float(np.mean(d.var(axis=1, ddof=1))) if images > 1 else 0.0
    if seeds < 2:
        return 0.0, within
    between = float(d.mean(axis=1).var(ddof=1)) - within / images
    return max(between, 0.0), within


def minimum_detectable_effect(se: float, df: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true effect a one-sided test at level ``alpha`` detects with
    probability ``power``: (t_{1-alpha} + t_{power}) x se."""
    return float((_t_quantile(1 - alpha, df) + _t_quantile(power, df)) * se)


def holm(pvalues, alpha: float = 0.05) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise ``alpha``."""
    order = np.argsort(pvalues, kind="stable")
    rejected = [False] * len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] > alpha / (len(pvalues) - rank):
            break
        rejected[i] = True
    return rejected


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's 95% score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN if either is constant."""
    from scipy.stats import rankdata  # here: SciPy is slow to import

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def spearman_ci(x, y, *, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile 95% interval of Spearman's correlation, resampling (x, y) pairs.
    Resamples that drew one value over and over have no correlation and are dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), size=(resamples, len(x)))
    draws = np.array([spearman(x[i], y[i]) for i in picks])
    return _percentiles(draws[~np.isnan(draws)])


def _t_quantile(q: float, df: float) -> float:
    from scipy.stats import t  # here: SciPy is slow to import

    return float(t.ppf(q, df))


def _t_tail(statistic: float, df: float) -> float:
    from scipy.stats import t

    return float(t.sf(statistic, df))


def _step(holds: bool) -> float:
    """The p-value of a test on a difference measured without error."""
    return 0.0 if holds else 1.0
