"""Figures of notebook 01 (initialization): they draw what helpers.initialization computes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from helpers.plots import color, freeze_layout, label_axes, new_figure

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")


def _style(i: int) -> dict:
    return {"color": color(i), "marker": MARKERS[i % len(MARKERS)], "markevery": 5,
            "markersize": 4, "linestyle": LINESTYLES[i % 2 * 2]}  # solid / dash-dot


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def profile_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    theory: Mapping[str, np.ndarray] | None = None,
    *,
    title: str = "Deep MLP at initialization",
    grad_reference: Mapping[str, np.ndarray] | None = None,
    figsize: tuple[float, float] = (10.0, 4.0),
) -> Figure:
    """Activation norm (left) and weight-gradient norm (right) per layer, log-scaled y.

    Args:
        curves: label -> ``(activation_norms, grad_norms)``, each of shape ``(depth,)``.
        theory: label -> predicted activation norms, drawn dashed in the matching colour.
        grad_reference: label -> a reference curve for the gradient axis, drawn dotted.
    """
    fig, axes = new_figure(1, 2, figsize=figsize)
    ax_a, ax_g = axes[0]
    labels = list(curves)
    for i, label in enumerate(labels):
        act, grad = curves[label]
        layers = np.arange(1, len(act) + 1)
        ax_a.plot(layers, _finite(act), label=label, **_style(i))
        ax_g.plot(layers, _finite(grad), label=label, **_style(i))
        if theory and label in theory:
            ax_a.plot(layers, _finite(theory[label]), color=color(i), linestyle="--", linewidth=1.2,
                      label=f"theory, {label}")
        if grad_reference and label in grad_reference:
            ax_g.plot(layers, _finite(grad_reference[label]), color=color(i), linestyle=":",
                      linewidth=1.5, label=f"reference, {label}")
    for ax in (ax_a, ax_g):
        ax.set_yscale("log")
    label_axes(ax_a, title="Activation norm", xlabel="layer i",
               ylabel="mean ‖Z_i‖₂ (log scale)")
    label_axes(ax_g, title="Gradient norm", xlabel="layer i",
               ylabel="‖∂loss/∂W_i‖_F (log scale)")
    ax_a.legend(fontsize=8)
    ax_g.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def loss_figure(losses: Mapping[str, np.ndarray], *, title: str = "Training loss from three initializations") -> Figure:
    """Training loss per SGD step, one line per initialization.

    ``losses`` maps a label to the losses of one run, shape ``(steps,)``, or of several seeds,
    shape ``(seeds, steps)``: then the line is the median over seeds and a shaded band spans
    the smallest to the largest seed.
    """
    fig, axes = new_figure(figsize=(7.0, 3.6))
    ax = axes[0, 0]
    for i, (label, values) in enumerate(losses.items()):
        values = np.asarray(values, dtype=float)
        if values.ndim not in (1, 2):
            raise ValueError(f"losses[{label!r}] must have shape (steps,) or (seeds, steps), got {values.shape}")
        steps = np.arange(values.shape[-1])
        if values.ndim == 2:
            ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color(i), alpha=0.2, linewidth=0)
            label = f"{label} (median, range of {values.shape[0]} seeds)"
            values = np.median(values, axis=0)
        ax.plot(steps, values, label=label, **{**_style(i), "markevery": max(1, len(steps) // 10)})
    ax.axhline(np.log(10), color="grey", linewidth=1, linestyle=":", label="ln 10 (uniform guess)")
    label_axes(ax, title=title, xlabel="SGD step", ylabel="cross-entropy (nats)")
    return fig


def units_figure(weights: Mapping[str, np.ndarray], *, units: int = 6,
                 title: str = "First-layer weights of the first hidden units after training") -> Figure:
    """Each hidden unit's incoming weights as a 28 x 28 picture, one row per initialization.

    ``weights`` maps a label to a first-layer weight matrix of shape ``(hidden, 784)``.  Each
    row shares one colour scale (the bar on the right), so identical units look identical.
    """
    rows = list(weights)
    fig, axes = new_figure(len(rows), units, figsize=(1.45 * units + 1.2, 1.6 * len(rows) + 0.6))
    for r, label in enumerate(rows):
        w = np.asarray(weights[label])
        lim = float(np.abs(w[:units]).max()) or 1.0
        image = None
        for j in range(units):
            ax = axes[r, j]
            image = ax.imshow(w[j].reshape(28, 28), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            label_axes(ax, title=f"unit {j + 1}", xlabel="", ylabel=label if j == 0 else "", legend=False)
        assert image is not None  # the figure has units >= 1 columns (new_figure raises otherwise)
        fig.colorbar(image, ax=list(axes[r]), shrink=0.8, label="weight")
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------- the slider panel
def _power_of_ten(value: float, _position: object = None) -> str:
    """Tick label ``1e-05`` style for a log axis (cheaper to draw than mathtext ``10^{-5}``)."""
    if value <= 0 or not np.isfinite(value):
        return ""
    exponent = int(round(np.log10(value)))
    return f"1e{exponent}" if abs(np.log10(value) - exponent) < 1e-6 else f"{value:.0e}"


def slider_figure() -> Figure:
    """The empty two-axes figure of the variance-slider panel; fill it with :func:`update_slider_figure`."""
    fig, axes = new_figure(1, 2, figsize=(9.0, 3.4))
    ax_a, ax_g = axes[0]
    ax_a.plot([], [], color=color(0), marker="o", markersize=3, label="measured")
    ax_a.plot([], [], color=color(1), linestyle="--", label="theory (infinite width)")
    ax_g.plot([], [], color=color(2), marker="s", markersize=3, label="measured")
    for ax in (ax_a, ax_g):
        ax.set_yscale("log")
        # Redraw speed: log-axis minor ticks and constrained layout cost ~100 ms per PNG,
        # so the panel uses major ticks only and fixed margins.
        ax.yaxis.set_major_locator(LogLocator(numticks=7))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))  # plain text: no mathtext parsing
    label_axes(ax_a, title="Activation norm", xlabel="layer i", ylabel="mean ‖Z_i‖₂ (log scale)")
    label_axes(ax_g, title="Gradient norm", xlabel="layer i", ylabel="‖∂loss/∂W_i‖_F (log scale)")
    freeze_layout(fig, measure=False)
    ax_a.set_position((0.09, 0.14, 0.38, 0.66))
    ax_g.set_position((0.60, 0.14, 0.38, 0.66))
    return fig


def update_slider_figure(fig: Figure, act: np.ndarray, theory: np.ndarray, grad: np.ndarray,
                         title: str) -> None:
    """Put new curves into :func:`slider_figure` in place (line data, limits, title)."""
    ax_a, ax_g = fig.axes[:2]
    layers = np.arange(1, len(act) + 1)
    marker_every = max(1, len(layers) // 10)
    for line, values in ((ax_a.lines[0], act), (ax_a.lines[1], theory), (ax_g.lines[0], grad)):
        line.set_data(layers, _finite(values))
        line.set_markevery(marker_every)
    for ax, arrays in ((ax_a, (act, theory)), (ax_g, (grad,))):
        vals = np.concatenate([_finite(a) for a in arrays])
        vals = vals[np.isfinite(vals)]
        lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.1, 10.0)
        lo, hi = min(lo, hi / 10), max(hi, lo * 10)  # at least a decade visible
        ax.set_ylim(lo / 2, hi * 2)
        ax.set_xlim(0.5, max(len(layers), 2) + 0.5)
    fig.suptitle(title)
