"""Notebook 02's panels: (a) the repeated product for any s, n and dtype; (b) the norm
profile of the deep MLP for any gain c, depth and normalization layer."""

from __future__ import annotations

import math
from collections.abc import Callable

import ipywidgets as widgets
from matplotlib.figure import Figure

from helpers.drift import (
    DTYPES,
    NORMALIZATIONS,
    RescaledProfiles,
    cached_product_norms,
    first_nonfinite_step,
    growth_per_step,
    norm_range,
    predicted_growth,
    predicted_norms,
)
from helpers.plots.drift import (
    product_panel_figure,
    profile_panel_figure,
    update_product_figure,
    update_profile_figure,
)
from helpers.widgets.panel import Panel

#: Steps shown by the repeated-product panel.
PRODUCT_STEPS = 60
#: The panel's MNIST batch: smaller than the notebook's 256 so a redraw stays fast.
PANEL_BATCH = 128


def update_product(fig: Figure, s: float, n: int, dtype: str, scaled: bool) -> str:
    """Redraw the repeated-product panel; returns the measured growth and where it breaks."""
    norms = cached_product_norms(float(s), int(n), str(dtype), bool(scaled), PRODUCT_STEPS)
    predicted = predicted_growth(s, n, scaled)
    update_product_figure(fig, norms, predicted_norms(norms[0], predicted, len(norms)),
                          norm_range(n, DTYPES[dtype]), s=s, n=n, dtype_name=dtype, scaled=scaled)
    growth = growth_per_step(norms)
    step = first_nonfinite_step(norms)
    if step is None:
        fate = f"stays finite for {PRODUCT_STEPS} steps"
    else:
        fate = f"{'overflows to inf' if math.isinf(norms[step]) else 'underflows to 0'} at step {step}"
    return (f"growth per step: measured {growth:.3g}, predicted {predicted:.3g}; "
            f"{dtype} {fate}; critical s* = {1 / predicted_growth(1.0, n, scaled):.3g}")


def product_panel(s: float = 1.0, n: int = 30, dtype: str = "float32", scaled: bool = False) -> Panel:
    """Sliders for s and n, a dtype choice and the 1/√n scaling of B_k."""
    controls = {
        "s": widgets.FloatSlider(value=s, min=0.1, max=2.5, step=0.05, description="s",
                                 continuous_update=False),
        "n": widgets.IntSlider(value=n, min=2, max=200, step=1, description="n",
                               continuous_update=False),
        "dtype": widgets.Dropdown(options=["float16", "float32", "float64"], value=dtype,
                                  description="dtype"),
        "scaled": widgets.Checkbox(value=scaled, description="divide B_k by √n"),
    }
    return Panel(product_panel_figure(PRODUCT_STEPS), update_product, controls,
                 title="A_k = s·A_(k-1)·B_k: find the s where the norm neither vanishes nor explodes.")


def profile_panel(gain: float = 2.0, depth: int = 50, norm: str = "none") -> Panel:
    """A slider for the gain c, one for the depth, and a choice of normalization layer.

    The dashed c = 2 reference for each (depth, norm) is computed once and cached, so a
    redraw computes at most one profile; profiles are cached per (gain, depth, norm) too.
    """
    profiles = RescaledProfiles(batch=PANEL_BATCH)
    return Panel(profile_panel_figure(), make_profile_update(profiles), _profile_controls(gain, depth, norm),
                 title="Deep ReLU MLP at init: move c with and without a normalization layer.")


def make_profile_update(profiles: RescaledProfiles) -> Callable[..., str]:
    """The profile panel's ``update(figure, gain, depth, norm) -> str`` over ``profiles``."""

    def update(fig: Figure, gain: float, depth: int, norm: str) -> str:
        act, grad = profiles.profile(gain, int(depth), str(norm))
        update_profile_figure(fig, act, grad, *profiles.reference(int(depth), str(norm)), gain=gain, norm=norm)
        return (f"c = {gain:g}, depth {depth}, {norm}: activation norm layer 1 → {depth}: "
                f"{act[0]:.3g} → {act[-1]:.3g}; gradient norms from {grad.min():.3g} to {grad.max():.3g}")

    return update


def _profile_controls(gain: float, depth: int, norm: str) -> dict[str, widgets.ValueWidget]:
    controls = {
        "gain": widgets.FloatSlider(value=gain, min=0.5, max=4.0, step=0.1, description="gain c",
                                    continuous_update=False),
        "depth": widgets.IntSlider(value=depth, min=10, max=100, step=10, description="depth",
                                   continuous_update=False),
        "norm": widgets.ToggleButtons(options=list(NORMALIZATIONS), value=norm, description="norm layer"),
    }
    return controls


PANELS = {"product": product_panel, "profile": profile_panel}
