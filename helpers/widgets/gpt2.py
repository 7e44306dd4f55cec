"""Notebook 05's panel: the histogram of any GPT-2 LayerNorm's γ or β, redrawn in place."""

from __future__ import annotations

from functools import partial

import ipywidgets as widgets
import numpy as np

from helpers.gpt2 import GROUPS, N_LAYERS, load_layernorm_params, validate_params
from helpers.plots.gpt2 import layernorm_histogram_figure, update_layernorm_histogram
from helpers.widgets.panel import Panel


def layernorm_panel(params: dict[str, np.ndarray] | None = None) -> Panel:
    """Choose a LayerNorm (block and ln_1 / ln_2 / ln_f), γ or β, the bins and log-y.

    Args:
        params: the 50 LayerNorm arrays (e.g. from :func:`helpers.gpt2.load_layernorm_params`);
            ``None`` reads the verified snapshot (never the network).
    """
    params = validate_params(load_layernorm_params("snapshot") if params is None else params)
    controls = {
        "layer": widgets.IntSlider(value=0, min=0, max=N_LAYERS - 1, step=1, description="block",
                                   continuous_update=False),
        "norm": widgets.ToggleButtons(options=list(GROUPS), value="ln_1", description="LayerNorm",
                                      tooltips=["before attention", "before the MLP",
                                                "final (block ignored)"]),
        "kind": widgets.ToggleButtons(options=[("γ weight", "weight"), ("β bias", "bias")],
                                      value="weight", description="parameter"),
        "bins": widgets.IntSlider(value=60, min=10, max=150, step=5, description="bins",
                                  continuous_update=False),
        "log_y": widgets.Checkbox(value=True, description="log-scaled y axis"),
    }
    update = partial(_update, params=params)
    return Panel(layernorm_histogram_figure(), update, controls,
                 title="Pick a LayerNorm of GPT-2 small and look at its 768 γ or β values.")


def _update(fig, *, params, layer, norm, kind, bins, log_y) -> str:  # type: ignore[no-untyped-def]
    return update_layernorm_histogram(fig, params, layer=layer, norm=norm, kind=kind, bins=bins,
                                      log_y=log_y)


PANELS = {"layernorm": layernorm_panel}
