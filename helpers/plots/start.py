"""The warm-up figure of notebook 00: samples of N(0, sigma^2) against the bell curve.

The samples, the histogram's bins and the density come from :mod:`helpers.start`.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from helpers.plots import color, freeze_layout, label_axes, new_figure
from helpers.start import BINS, N_SAMPLES, X_RANGE, density_histogram, gaussian_density, gaussian_samples

GRID = np.linspace(*X_RANGE, 400)


def gaussian_figure(sigma: float = 1.0) -> Figure:
    """A histogram of samples of N(0, sigma^2) with the density it should follow.

    The bars and the curve are created once; :func:`update_gaussian_figure` changes their
    heights in place, so a slider redraw does not rebuild the axes.
    """
    fig, axes = new_figure(figsize=(7.0, 3.6))
    ax = axes[0, 0]
    widths = np.diff(BINS)
    bars = ax.bar(BINS[:-1], np.zeros_like(widths), width=widths, align="edge", color=color(0),
                  alpha=0.6, label=f"{N_SAMPLES:,} samples")
    (curve,) = ax.plot(GRID, np.zeros_like(GRID), color=color(1), label="density")
    ax.set_xlim(*X_RANGE)
    ax.set_ylim(0, 1.0)
    label_axes(ax, title="", xlabel="value", ylabel="density (1 / unit)", legend=False)
    ax.legend(handles=[bars, curve])  # samples first, then the curve whose label changes
    update_gaussian_figure(fig, density_histogram(gaussian_samples(sigma)), gaussian_density(GRID, sigma),
                           sigma)
    return freeze_layout(fig)  # lay out once; redraws keep the layout


def update_gaussian_figure(fig: Figure, heights: np.ndarray, density: np.ndarray, sigma: float) -> None:
    """Redraw :func:`gaussian_figure` in place: the histogram ``heights`` (one per bin of
    :data:`helpers.start.BINS`) and the ``density`` curve on :data:`GRID`."""
    ax = fig.axes[0]
    for bar, height in zip(ax.patches, heights, strict=True):
        cast(Rectangle, bar).set_height(height)  # the histogram's bars
    ax.lines[0].set_ydata(density)
    legend = ax.get_legend()
    assert legend is not None, "fig must come from gaussian_figure(), which draws a legend"
    legend.get_texts()[1].set_text(f"N(0, {sigma:.2f}²) density")
    ax.set_title(f"Samples of N(0, σ²) with σ = {sigma:.2f}")
