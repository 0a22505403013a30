"""Bootstrap intervals. Every comparison in the book carries a 95% interval."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


def bootstrap_ci(values, *, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``values``, resampling the items."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return _percentiles(values[picks].mean(axis=1))


def paired_difference_ci(a, b, *, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) for paired per-item values (same test images)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, seed=seed, resamples=resamples)


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def pack_bits(flags) -> str:
    """Per-image booleans as a compact '0'/'1' string for the results JSON."""
    return "".join("1" if f else "0" for f in np.asarray(flags, dtype=bool))


def unpack_bits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")
