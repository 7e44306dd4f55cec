"""The course's matplotlib style: colour-blind-safe, readable on a projector, PNG output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from cycler import cycler

if TYPE_CHECKING:  # the names of matplotlib's settings (recent matplotlib), for the type check only
    from matplotlib.typing import RcKeyType

#: Okabe & Ito (2008) colour-blind-safe palette, in the order plots use it.
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: The palette as a list, in cycle order.
COLORS: list[str] = list(PALETTE.values())

#: rcParams applied by :func:`apply_style`.
RC_PARAMS: dict[RcKeyType, Any] = {
    "axes.prop_cycle": cycler(color=COLORS),
    "figure.figsize": (8.0, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.format": "png",
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "lines.linewidth": 2.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "svg.hashsalt": "course",  # deterministic ids if anyone does save SVG
}


def apply_style() -> None:
    """Apply the course style to matplotlib's global rcParams."""
    mpl.rcParams.update(RC_PARAMS)
