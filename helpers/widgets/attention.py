"""Notebook 04's panel: dimension, temperature and √d scaling of one attention row."""

from __future__ import annotations

import math

import ipywidgets as widgets
from matplotlib.figure import Figure

from helpers.attention import temperature_curves, temperature_row
from helpers.plots.attention import temperature_figure, update_temperature_figure
from helpers.widgets.panel import Panel


def update_temperature(fig: Figure, d: int, temperature: float, scaled: bool) -> str:
    """The panel's update: query 0's attention row for d, T and the scaling, drawn in place;
    returns a readout."""
    row = temperature_row(d, temperature, scaled)
    update_temperature_figure(fig, row, temperature_curves(d, scaled), d=d, temperature=temperature,
                              scaled=scaled)
    n = len(row.probs)
    return (f"logit std = {row.logits.std() / temperature:.3g}, entropy = {row.entropy:.3f} nats "
            f"(uniform: log {n} = {math.log(n):.3f}), max p = {row.max_prob:.3f} → {row.regime}")


def temperature_panel(d: int = 64, temperature: float = 1.0, scaled: bool = True) -> Panel:
    """Sliders for d and the temperature T, a checkbox for dividing by √d, and one
    attention row's softmax distribution with its entropy and largest probability."""
    controls = {
        "d": widgets.IntSlider(value=d, min=2, max=256, step=1, description="d",
                               continuous_update=False),
        "temperature": widgets.FloatLogSlider(value=temperature, base=10, min=-1.5, max=1.5,
                                              step=0.05, description="T",
                                              continuous_update=False),
        "scaled": widgets.Checkbox(value=scaled, description="divide by √d"),
    }
    return Panel(temperature_figure(d, temperature, scaled), update_temperature, controls,
                 title="Move d and T, toggle the √d scaling: where is the row uniform, "
                       "one-hot, or in between?")


PANELS = {"temperature": temperature_panel}
