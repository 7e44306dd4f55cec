"""Notebook 05's panel: the histogram of any GPT-2 LayerNorm's γ or β, redrawn in place."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from helpers.gpt2 import GROUPS, N_LAYERS, parameter_histogram, validate_params
from helpers.gpt2_hub import load_layernorm_params
from helpers.plots.gpt2 import layernorm_histogram_figure, update_layernorm_histogram
from helpers.widgets.panel import Panel


def make_layernorm_update(params: dict[str, np.ndarray]) -> Callable[..., str]:
    """The panel's ``update(figure, layer, group, kind, bins, log_y) -> str`` over ``params``.

    Raises (from the returned function):
        TypeError / ValueError: for a ``layer`` outside 0..11, an unknown ``group`` or ``kind``,
            or ``bins`` < 1.
    """

    def update(fig: Figure, layer: int, group: str, kind: str, bins: int, log_y: bool) -> str:
        hist = parameter_histogram(params, layer, group, kind, bins)
        update_layernorm_histogram(fig, hist, log_y=log_y)
        return (f"{hist.name}.{kind}: median {hist.median:.3g}, std {hist.std:.3g}, "
                f"range [{hist.low:.3g}, {hist.high:.3g}], in [0.2, 0.4]: {hist.in_claim_range:.0%}")

    return update


def layernorm_panel(params: dict[str, np.ndarray] | None = None) -> Panel:
    """Choose a LayerNorm (block and ln_1 / ln_2 / ln_f), γ or β, the bins and log-y.

    Args:
        params: the 50 LayerNorm arrays (e.g. from :func:`helpers.gpt2_hub.load_layernorm_params`);
            ``None`` reads the verified snapshot (never the network).
    """
    params = validate_params(load_layernorm_params("snapshot") if params is None else params)
    controls = {
        "layer": widgets.IntSlider(value=0, min=0, max=N_LAYERS - 1, step=1, description="block",
                                   continuous_update=False),
        "group": widgets.ToggleButtons(options=list(GROUPS), value="ln_1", description="LayerNorm",
                                       tooltips=["before attention", "before the MLP",
                                                 "final (block ignored)"]),
        "kind": widgets.ToggleButtons(options=[("γ weight", "weight"), ("β bias", "bias")],
                                      value="weight", description="parameter"),
        "bins": widgets.IntSlider(value=60, min=10, max=150, step=5, description="bins",
                                  continuous_update=False),
        "log_y": widgets.Checkbox(value=True, description="log-scaled y axis"),
    }
    return Panel(layernorm_histogram_figure(), make_layernorm_update(params), controls,
                 title="Pick a LayerNorm of GPT-2 small and look at its 768 γ or β values.")


PANELS = {"layernorm": layernorm_panel}
