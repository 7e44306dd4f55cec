"""Notebook 03's panel: LayerNorm's gamma, beta and epsilon acting on a histogram."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets
from matplotlib.figure import Figure

from helpers.norms import Standardized, panel_inputs, panel_output, standardize_for_panel
from helpers.plots import freeze_layout
from helpers.plots.norms import GRID, gamma_beta_figure, update_gamma_beta_figure
from helpers.start import gaussian_density
from helpers.widgets.panel import Panel


def make_gamma_beta_update(inputs: Mapping[str, Standardized]) -> Callable[..., str]:
    """The panel's ``update(figure, gamma, beta, eps, data) -> str`` over inputs standardized once."""

    def update(fig: Figure, gamma: float, beta: float, eps: float, data: str) -> str:
        standardized = inputs[data]
        out = panel_output(standardized, gamma, beta, eps)
        update_gamma_beta_figure(fig, out, gaussian_density(GRID, out.std, mean=out.mean), standardized.skew, data)
        return (f"output mean = {out.mean:.3f}, std = {out.std:.3f} (γ = {gamma:.2f}, β = {beta:.2f}), "
                f"skewness = {standardized.skew:.2f}")

    return update


def gamma_beta_panel(gamma: float = 1.0, beta: float = 0.0, eps: float = 1e-5) -> Panel:
    """Sliders for LayerNorm's gamma (weight), beta (bias) and epsilon, and a choice of input;
    the histogram of the output and its mean/std readout."""
    inputs = {name: standardize_for_panel(values) for name, values in panel_inputs().items()}
    controls = {
        "gamma": widgets.FloatSlider(value=gamma, min=0.25, max=4.0, step=0.05, description="γ (weight)",
                                     continuous_update=False),
        "beta": widgets.FloatSlider(value=beta, min=-5.0, max=5.0, step=0.1, description="β (bias)",
                                    continuous_update=False),
        "eps": widgets.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25, description="ε",
                                      readout_format=".1e", continuous_update=False),
        "data": widgets.Dropdown(options=list(inputs), value=next(iter(inputs)), description="input"),
    }
    panel = Panel(gamma_beta_figure(), make_gamma_beta_update(inputs), controls,
                  title="LayerNorm output y = γ·(x − μ)/√(σ² + ε) + β: move γ, β, ε.")
    # The first render placed the axes; freezing that layout keeps each redraw fast.
    freeze_layout(panel.figure)
    return panel


PANELS = {"gamma_beta": gamma_beta_panel}
