"""Bootstrap intervals. Every comparison in the book carries a 95% interval."""

from __future__ import annotations

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
