"""Notebook 00's warm-up panel: one slider, one figure redrawn in place."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from helpers.plots.start import GRID, gaussian_figure, update_gaussian_figure
from helpers.start import density_histogram, gaussian_density, gaussian_samples
from helpers.widgets.panel import Panel


def update_gaussian(fig: Figure, sigma: float) -> str:
    """The panel's update: new samples of N(0, sigma^2), drawn in place; returns a readout."""
    samples = gaussian_samples(sigma)
    update_gaussian_figure(fig, density_histogram(samples), gaussian_density(GRID, sigma), sigma)
    return f"sample std = {samples.std():.2f}  (sigma = {sigma:.2f})"


def gaussian_panel(sigma: float = 1.0) -> Panel:
    """A slider for sigma and the histogram of N(0, sigma^2) samples."""
    slider = widgets.FloatSlider(value=sigma, min=0.5, max=4.0, step=0.1, description="σ",
                                 continuous_update=False)
    return Panel(gaussian_figure(sigma), update_gaussian, {"sigma": slider},
                 title="Move σ: the histogram and the curve widen together.")


PANELS = {"gaussian": gaussian_panel}
