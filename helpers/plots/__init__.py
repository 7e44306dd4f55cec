"""Drawing functions, one module per lecture concept.

Every function here takes computed data (from the compute modules) and returns a
:class:`matplotlib.figure.Figure`.  Figures are created with :func:`new_figure`, outside
pyplot, so a notebook cell that ends with the call shows the figure exactly once and no
figure is kept alive in pyplot's global registry.

Figures redrawn by a slider panel are built once with their artists, which carry a ``gid``
(found again with :func:`artist`), laid out once and frozen with :func:`freeze_layout`; an
``update_*_figure`` function then only changes artist data (it computes nothing: the
numbers come from the compute modules, through the panel's update in ``helpers.widgets``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.style import COLORS, RC_PARAMS


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **subplot_kw: Any
) -> tuple[Figure, np.ndarray]:
    """A new constrained-layout figure and its axes as a 2-D array (``squeeze=False``)."""
    if figsize is None:
        figsize = RC_PARAMS["figure.figsize"]
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


def artist(ax: Axes, gid: str) -> Any:
    """The artist of ``ax`` (line, patch, text or collection) whose ``gid`` is ``gid``.

    Raises:
        KeyError: if ``ax`` holds no artist with that gid.
    """
    for child in ax.get_children():
        if isinstance(child, Artist) and child.get_gid() == gid:
            return child
    raise KeyError(f"no artist with gid {gid!r} in these axes")


def set_limits(ax: Axes, *, x: tuple[float, float] | None = None, y: tuple[float, float] | None = None) -> None:
    """Set the axis limits that differ from the current ones (an unchanged limit is left alone,
    so a redraw keeps its cached ticks)."""
    if x is not None and tuple(ax.get_xlim()) != tuple(x):
        ax.set_xlim(*x)
    if y is not None and tuple(ax.get_ylim()) != tuple(y):
        ax.set_ylim(*y)


def freeze_layout(fig: Figure, *, measure: bool = True, pin_labels: bool = False) -> Figure:
    """Lay ``fig`` out once, then remove its layout engine: a redraw then runs no layout solver
    (which costs more than drawing a small panel) and the axes do not jump when titles change.

    Args:
        measure: draw the figure once first, which runs its layout engine and places titles
            and axis labels; ``False`` for a figure whose axes are then placed by hand
            (``subplots_adjust`` / ``set_position``).
        pin_labels: also pin every axis label where the layout put it (in axes fraction, so
            the same at any dpi): a redraw then skips measuring the tick labels to place them.

    Returns:
        ``fig`` itself.
    """
    if measure or pin_labels:
        fig.draw_without_rendering()  # runs the layout engine and places titles and labels
    if pin_labels:
        for ax in fig.axes:
            to_axes = ax.transAxes.inverted()
            x_label, y_label = ax.xaxis.label, ax.yaxis.label
            ax.xaxis.set_label_coords(0.5, to_axes.transform(
                x_label.get_transform().transform(x_label.get_position()))[1])
            ax.yaxis.set_label_coords(to_axes.transform(
                y_label.get_transform().transform(y_label.get_position()))[0], 0.5)
    # ``None`` removes the engine (``"none"`` would leave a placeholder that makes savefig draw
    # twice); the rc context keeps rcParams from putting a default engine back.
    with rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    return fig
