"""Notebook 01's "variance slider": gain, depth, width and activation of a deep MLP at init.

The panel draws the per-layer activation norm (with the infinite-width theory line) and the
weight-gradient norm, redrawn in place.  To stay responsive up to depth 100 and width 512 it
(1) draws all random weights once, in the factory (:class:`~helpers.initialization.WeightBank`,
about 100 MB at the largest size; smaller networks are slices of it), (2) uses a smaller batch
than the notebook's figures (:data:`PANEL_BATCH` MNIST images instead of 256) and (3) computes
gradient norms with :func:`~helpers.initialization.fast_profile` (no autograd).  So its numbers
are the same kind of measurement as :func:`~helpers.initialization.norm_profile`, on another
random draw of weights and a smaller batch: curves agree in trend, not digit for digit.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from helpers.initialization import ACTIVATIONS, WeightBank, fast_profile, mnist_batch
from helpers.initialization_theory import theory_norms
from helpers.plots.initialization import slider_figure, update_slider_figure
from helpers.training import single_thread
from helpers.widgets.panel import Panel

#: MNIST images the panel pushes through the network (the notebook's figures use 256).
PANEL_BATCH = 16
GAIN_RANGE = (0.25, 4.0)
DEPTH_RANGE = (1, 100)
WIDTH_RANGE = (10, 512)


def make_slider_update(batch: int = PANEL_BATCH, seed: int = 0) -> Callable[..., str]:
    """The panel's ``update(figure, gain, depth, width, activation) -> str``, with its weight bank
    and MNIST batch precomputed.  Exposed so tests can call it at the controls' extremes."""
    bank = WeightBank(max_depth=DEPTH_RANGE[1], max_width=WIDTH_RANGE[1], seed=seed)
    x, y = mnist_batch(batch)
    input_sq = (x.double() ** 2).sum(dim=1).numpy()

    def update(figure: Figure, gain: float, depth: int, width: int, activation: str) -> str:
        weights, final = bank.standard(depth, width)
        scales, final_scale = bank.scales(gain, depth, width)
        with single_thread():  # small matrices: one thread is faster, and sums run in a fixed order
            act, grad = fast_profile(x, y, weights, final, activation, scales=scales, final_scale=final_scale)
        theory = theory_norms(gain, depth, width, activation, input_sq)
        update_slider_figure(
            figure, act, theory, grad,
            title=f"{activation}, Var(W) = {gain:.2f}/n_in, depth {depth}, width {width}")
        head = f"layer {depth}: ||Z|| = {act[-1]:.3g} (theory {theory[-1]:.3g}), layer 1: {act[0]:.3g}; "
        finite = np.isfinite(grad) & (grad > 0)
        if not finite.all():
            return head + (f"gradient norms underflow or overflow float32 in "
                           f"{int((~finite).sum())} of {depth} layers")
        return head + (f"gradient norms span a factor {grad.max() / grad.min():.3g} "
                       f"(median {np.median(grad):.3g})")

    return update


def variance_slider(gain: float = 2.0, depth: int = 50, width: int = 100,
                    activation: str = "relu") -> Panel:
    """The variance-slider panel: ``W_i ~ N(0, gain / n_in)``; move gain, depth, width, activation."""
    controls = {
        "gain": widgets.FloatSlider(value=gain, min=GAIN_RANGE[0], max=GAIN_RANGE[1], step=0.05,
                                    description="gain c", continuous_update=False),
        "depth": widgets.IntSlider(value=depth, min=DEPTH_RANGE[0], max=DEPTH_RANGE[1],
                                   description="depth", continuous_update=False),
        "width": widgets.IntSlider(value=width, min=WIDTH_RANGE[0], max=WIDTH_RANGE[1],
                                   description="width", continuous_update=False),
        "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation,
                                       description="activation"),
    }
    return Panel(slider_figure(), make_slider_update(), controls,
                 title="Var(W) = c / n_in: move c, depth, width and the activation "
                       f"(batch of {PANEL_BATCH} MNIST images; dashed = infinite-width theory)")


PANELS = {"variance_slider": variance_slider}
