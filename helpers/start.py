"""Notebook 00's warm-up measurement: samples of N(0, sigma^2) and the height of their histogram.

The panel of notebook 00 draws a histogram of :data:`N_SAMPLES` samples over the fixed bins
:data:`BINS`.  :func:`histogram_peak` measures the height of that histogram at its peak, and
:func:`peak_ratios` measures, over independent draws, how much that height changes when sigma
doubles (the notebook's claim: it halves).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from helpers.validation import check_int, check_ints, check_positive, check_real

X_RANGE = (-8.0, 8.0)
#: Bin edges of the panel's histogram: 60 bins of width 16/60 ≈ 0.27; 0 is an edge.
BINS = np.linspace(*X_RANGE, 61)
#: Samples per histogram.
N_SAMPLES = 2000


def gaussian_samples(sigma: float, n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """``n`` samples of N(0, sigma^2) from ``numpy.random.default_rng(seed)``.

    Raises:
        TypeError: if ``sigma`` is not a real number or ``n``/``seed`` is not an int.
        ValueError: if ``sigma`` is not positive, ``n`` < 1 or ``seed`` < 0.
    """
    sigma = check_positive("sigma", sigma)
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    return np.random.default_rng(seed).normal(0.0, sigma, size=n)


def gaussian_density(x: np.ndarray, sigma: float, mean: float = 0.0) -> np.ndarray:
    """The density of N(mean, sigma^2) at ``x``: exp(−(x − mean)²/2σ²) / (σ√(2π)).

    Raises:
        TypeError / ValueError: if ``sigma`` is not a finite number > 0 or ``mean`` not finite.
    """
    sigma = check_positive("sigma", sigma)
    mean = check_real("mean", mean)
    z = (np.asarray(x, dtype=np.float64) - mean) / sigma
    return np.exp(-0.5 * z**2) / (sigma * np.sqrt(2 * np.pi))


def density_histogram(samples: np.ndarray) -> np.ndarray:
    """Heights of the density histogram of ``samples`` over :data:`BINS` (area 1 inside the bins).

    Raises:
        TypeError: if ``samples`` is not a NumPy array.
        ValueError: if ``samples`` is empty or not one-dimensional.
    """
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"samples must be a NumPy array, got {type(samples).__name__}")
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"samples must be a non-empty 1-D array, got shape {samples.shape}")
    heights, _ = np.histogram(samples, bins=BINS, density=True)
    return heights


def histogram_peak(samples: np.ndarray) -> float:
    """Height of the density histogram of ``samples`` (bins :data:`BINS`) at its peak.

    The peak of a zero-mean Gaussian sits at 0, which is a bin edge: the height is the mean
    density of the two bars either side of 0 (the fraction of samples within one bin width of
    0, divided by two bin widths).

    Raises:
        TypeError: if ``samples`` is not a NumPy array.
        ValueError: if ``samples`` is empty or not one-dimensional.
    """
    heights = density_histogram(samples)
    middle = len(heights) // 2
    return float(heights[middle - 1:middle + 1].mean())


def peak_ratios(sigma: float = 1.0, factor: float = 2.0, seeds: Iterable[int] = range(10),
                n: int = N_SAMPLES) -> np.ndarray:
    """Peak height at ``factor * sigma`` over peak height at ``sigma``, one ratio per seed.

    For seed ``k`` the two histograms come from independent draws (seeds ``2k`` and ``2k + 1``),
    so the ratio carries the sampling noise of both.

    Raises:
        TypeError / ValueError: a bad ``sigma``, ``factor``, seed or ``n`` (see
            :func:`gaussian_samples`), or no seeds.
    """
    sigma = check_positive("sigma", sigma)
    factor = check_positive("factor", factor)
    seeds = check_ints("seeds", seeds, minimum=0)
    return np.array([histogram_peak(gaussian_samples(factor * sigma, n, 2 * s + 1))
                     / histogram_peak(gaussian_samples(sigma, n, 2 * s)) for s in seeds])


__all__ = ["BINS", "N_SAMPLES", "X_RANGE", "density_histogram", "gaussian_density", "gaussian_samples",
           "histogram_peak", "peak_ratios"]
