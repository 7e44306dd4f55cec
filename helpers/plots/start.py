"""The warm-up figure of notebook 00: samples of N(0, sigma^2) against the bell curve."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from helpers.plots import color, label_axes, new_figure

X_RANGE = (-8.0, 8.0)


def gaussian_samples(sigma: float, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``n`` samples of N(0, sigma^2) from a seeded generator.

    Raises:
        ValueError: if ``sigma`` is not positive or ``n`` < 1.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return np.random.default_rng(seed).normal(0.0, sigma, size=n)


def gaussian_figure(sigma: float = 1.0) -> Figure:
    """A histogram of samples of N(0, sigma^2) with the density it should follow."""
    fig, axes = new_figure(figsize=(7.0, 3.6))
    update_gaussian_figure(fig, sigma=sigma)
    return fig


def update_gaussian_figure(fig: Figure, sigma: float) -> str:
    """Redraw :func:`gaussian_figure` in place for a new ``sigma``; returns a readout."""
    ax = fig.axes[0]
    ax.clear()
    samples = gaussian_samples(sigma)
    ax.hist(samples, bins=60, range=X_RANGE, density=True, color=color(0), alpha=0.6,
            label="2,000 samples")
    grid = np.linspace(*X_RANGE, 400)
    density = np.exp(-0.5 * (grid / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    ax.plot(grid, density, color=color(1), label=f"N(0, {sigma:.2f}²) density")
    ax.set_xlim(*X_RANGE)
    ax.set_ylim(0, 1.0)
    label_axes(ax, title=f"Samples of N(0, σ²) with σ = {sigma:.2f}",
               xlabel="value", ylabel="density (1 / unit)")
    return f"sample std = {samples.std():.2f}  (sigma = {sigma:.2f})"
