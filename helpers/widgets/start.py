"""Notebook 00's warm-up panel: one slider, one figure redrawn in place."""

from __future__ import annotations

import ipywidgets as widgets

from helpers.plots.start import gaussian_figure, update_gaussian_figure
from helpers.widgets.panel import Panel


def gaussian_panel(sigma: float = 1.0) -> Panel:
    """A slider for sigma and the histogram of N(0, sigma^2) samples."""
    slider = widgets.FloatSlider(value=sigma, min=0.5, max=4.0, step=0.1, description="σ",
                                 continuous_update=False)
    return Panel(gaussian_figure(sigma), update_gaussian_figure, {"sigma": slider},
                 title="Move σ: the histogram and the curve widen together.")


PANELS = {"gaussian": gaussian_panel}
