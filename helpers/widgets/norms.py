"""Notebook 03's panel: LayerNorm's gamma, beta and epsilon acting on a histogram."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from helpers.norms import panel_inputs
from helpers.plots.norms import gamma_beta_figure, update_gamma_beta_figure
from helpers.widgets.panel import Panel

BINS = 60


def _prepare(values: np.ndarray) -> dict[str, object]:
    """What one redraw needs, computed once: x̂ (eps = 0), its histogram and the variance."""
    mean, var = values.mean(), values.var()
    z = (values - mean) / np.sqrt(var)
    counts, edges = np.histogram(z, bins=BINS)
    return {"z": z, "var": var, "counts": counts, "edges": edges,
            "z_mean": z.mean(), "z_std": z.std(), "skew": float((z**3).mean() / z.std() ** 3)}


def gamma_beta_update(prepared: dict[str, dict[str, object]]):
    """The update function of :func:`gamma_beta_panel` over precomputed inputs."""

    def update(fig, gamma: float, beta: float, eps: float, data: str) -> str:
        p = prepared[data]
        scale = gamma * float(np.sqrt(p["var"] / (p["var"] + eps)))
        mean = round(scale * p["z_mean"] + beta, 3) + 0.0  # + 0.0: never print "-0.000"
        std = scale * p["z_std"]
        update_gamma_beta_figure(fig, p["counts"], p["edges"], scale, beta, (mean, std, p["skew"]), data)
        return f"output mean = {mean:.3f}, std = {std:.3f} (γ = {gamma:.2f}, β = {beta:.2f}), skewness = {p['skew']:.2f}"

    return update


def gamma_beta_panel(gamma: float = 1.0, beta: float = 0.0, eps: float = 1e-5) -> Panel:
    """Sliders for LayerNorm's gamma (weight), beta (bias) and epsilon, and a choice of input;
    the histogram of the output and its mean/std readout."""
    inputs = panel_inputs()
    prepared = {name: _prepare(values) for name, values in inputs.items()}
    controls = {
        "gamma": widgets.FloatSlider(value=gamma, min=0.25, max=4.0, step=0.05, description="γ (weight)",
                                     continuous_update=False),
        "beta": widgets.FloatSlider(value=beta, min=-5.0, max=5.0, step=0.1, description="β (bias)",
                                    continuous_update=False),
        "eps": widgets.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25, description="ε",
                                      readout_format=".1e", continuous_update=False),
        "data": widgets.Dropdown(options=list(inputs), value=next(iter(inputs)), description="input"),
    }
    panel = Panel(gamma_beta_figure(), gamma_beta_update(prepared), controls,
                  title="LayerNorm output y = γ·(x − μ)/√(σ² + ε) + β: move γ, β, ε.")
    # The first render placed the axes; freezing that layout keeps each redraw fast.
    panel.figure.set_layout_engine("none")
    return panel


PANELS = {"gamma_beta": gamma_beta_panel}
