"""Notebook 07's panels: (a) dropout's train/eval variance shift for any rate p; (b) ‖W₁‖ and the
effective learning rate over training for any weight decay λ (from the stored study)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from helpers.plots import freeze_layout
from helpers.plots.regularization import (
    decay_panel_figure,
    update_decay_figure,
    update_variance_shift_figure,
    variance_shift_figure,
)
from helpers.regularization import variance_shift
from helpers.widgets.panel import Panel

#: MNIST images the dropout panel pushes through its two layers.
PROBE_IMAGES = 512
#: The groups of the ``regularization`` study the weight-decay panel can show.
DECAY_GROUPS = {"Linear → BatchNorm (bn)": "bn", "no normalization (plain)": "plain"}


def make_dropout_update(x: torch.Tensor) -> Callable[..., str]:
    """The dropout panel's ``update(figure, p) -> str`` on the inputs ``x``."""

    def update(fig: Figure, p: float) -> str:
        shift = variance_shift(float(p), x)
        update_variance_shift_figure(fig, shift.train_values, shift.eval_values, shift.p, shift.var_ratio)
        return (f"p = {shift.p:.2f}: training variance = {shift.var_ratio:.2f} × evaluation variance; "
                f"largest mean shift {shift.mean_shift:.2f} eval std; a BatchNorm fitted in training "
                f"outputs std {shift.eval_std_after_bn:.2f} at evaluation")

    return update


def dropout_panel(p: float = 0.5) -> Panel:
    """A slider for the dropout rate p; histograms of the next layer's pre-activations."""
    from helpers.data import load_mnist

    x, _ = load_mnist("train", limit=PROBE_IMAGES)
    controls = {"p": widgets.FloatSlider(value=p, min=0.0, max=0.8, step=0.05, description="dropout p",
                                         continuous_update=False)}
    panel = Panel(variance_shift_figure(), make_dropout_update(x), controls,
                  title="Inverted dropout: same mean, larger variance in training. Move p.")
    freeze_layout(panel.figure)
    return panel


def make_decay_update(arrays: Mapping[str, np.ndarray], lr: float) -> Callable[..., str]:
    """The weight-decay panel's ``update(figure, lam, group) -> str`` over the study's arrays."""
    lams = [float(v) for v in arrays["lams"]]
    seeds = len(arrays["seeds"])
    steps = arrays["record_steps"]

    def rows(group: str, lam: float) -> np.ndarray:
        k = lams.index(lam)
        return np.asarray(arrays[f"{group}_norms"][:, k * seeds:(k + 1) * seeds, 0], dtype=np.float64)

    def update(fig: Figure, lam: float, group: str) -> str:
        key = DECAY_GROUPS[group]
        norms, zero = rows(key, float(lam)), rows(key, 0.0)
        update_decay_figure(fig, steps, norms, zero, lr, float(lam), key)
        k = lams.index(float(lam))
        test = 100 * np.median(arrays[f"{key}_test_error"][k * seeds:(k + 1) * seeds])
        test0 = 100 * np.median(arrays[f"{key}_test_error"][:seeds])
        return (f"λ = {lam:g}: final ‖W₁‖ {np.median(norms[-1]):.2f} vs {np.median(zero[-1]):.2f} without decay "
                f"(effective lr ×{np.median(zero[-1] ** 2 / norms[-1] ** 2):.1f}); test error {test:.1f} % vs "
                f"{test0:.1f} %")

    return update


def decay_panel(lam: float = 1e-3, group: str = "Linear → BatchNorm (bn)", results: object = None) -> Panel:
    """A slider over the study's λ values and a choice of network; ‖W₁‖ and lr/‖W₁‖² over training.
    ``results``: the ``regularization`` study already loaded (by default it is loaded here).

    Raises:
        TypeError: if ``results`` is given and is not a ``studies.Results``.
    """
    import studies

    if results is None:
        results = studies.obtain("regularization")
    if not isinstance(results, studies.Results):
        raise TypeError(f"results must be the regularization study's studies.Results, got {type(results).__name__}")
    options = [(f"{v:g}", float(v)) for v in results["lams"] if v > 0]
    controls = {
        "lam": widgets.SelectionSlider(options=options, value=min((v for _, v in options), key=lambda v: abs(v - lam)),
                                       description="λ", continuous_update=False),
        "group": widgets.Dropdown(options=list(DECAY_GROUPS), value=group, description="network"),
    }
    panel = Panel(decay_panel_figure(results["record_steps"]),
                  make_decay_update(results.arrays, float(results.config["lr"])), controls,
                  title="Weight decay λ: the size of W₁ and the effective learning rate over training.")
    freeze_layout(panel.figure)
    return panel


PANELS = {"dropout": dropout_panel, "weight_decay": decay_panel}
