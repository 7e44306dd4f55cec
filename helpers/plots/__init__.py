"""Drawing functions, one module per lecture concept.

Every function here takes computed data (from the compute modules) and returns a
:class:`matplotlib.figure.Figure`.  Figures are created with :func:`new_figure`, outside
pyplot, so a notebook cell that ends with the call shows the figure exactly once and no
figure is kept alive in pyplot's global registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.style import COLORS, RC_PARAMS


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplot_kw: Any
) -> tuple[Figure, np.ndarray]:
    """A new constrained-layout figure and its axes as a 2-D array (``squeeze=False``)."""
    if figsize is None:
        figsize = RC_PARAMS["figure.figsize"]  # type: ignore[assignment]
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def color(i: int) -> str:
    """The ``i``-th colour of the course palette (cycling)."""
    return COLORS[i % len(COLORS)]


def label_axes(ax: Axes, *, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    """Set the title and axis labels every course figure needs, plus a legend if any line has a label."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()
