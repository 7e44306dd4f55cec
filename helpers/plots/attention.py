"""Figures of notebook 04: the growth of QKᵀ with d, softmax saturation, temperature."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from helpers.attention import (
    ONE_HOT_THRESHOLD,
    UNIFORM_THRESHOLD,
    GradientScan,
    SaturationSweep,
    StdSweep,
    qk_scores,
)
from helpers.attention_training import ScalingComparison
from helpers.plots import color, label_axes, new_figure

#: Rows of the attention panel: n queries and n keys.
PANEL_N = 50
#: Temperatures drawn on the panel's right-hand curve (log-spaced).
PANEL_TEMPERATURES = np.logspace(-2, 2, 81)
#: Fixed tick positions of the panel (no tick search on a redraw).
_PANEL_T_TICKS = (0.01, 0.1, 1.0, 10.0, 100.0)
_PANEL_P_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_PANEL_RANK_TICKS = (1, 10, 20, 30, 40, 50)
#: A row counts as "uniform-like" above this share of log n entropy ...
UNIFORM_LIKE = UNIFORM_THRESHOLD
#: ... and as "one-hot-like" when its largest probability is at least this (the one
#: definition, :data:`helpers.attention.ONE_HOT_THRESHOLD`).
ONE_HOT_LIKE = ONE_HOT_THRESHOLD


def std_vs_dim_figure(sweep: StdSweep) -> Figure:
    """std(QKᵀ) against √d, and std(QKᵀ/√d) against 1, over the swept dimensions."""
    fig, axes = new_figure(figsize=(7.5, 3.8))
    ax = axes[0, 0]
    ax.plot(sweep.dims, sweep.std_raw, "o", ms=4, color=color(1), label="std(QKᵀ), measured")
    ax.plot(sweep.dims, sweep.sqrt_d, "-", color=color(7), lw=1.5, label="√d (theory)")
    ax.plot(sweep.dims, sweep.std_scaled, "^", ms=4, color=color(0), label="std(QKᵀ/√d), measured")
    ax.axhline(1.0, color=color(0), ls="--", lw=1, label="1 (theory for scaled)")
    label_axes(ax, title="Score spread grows like √d; dividing by √d pins it at 1",
               xlabel="dimension d of queries and keys", ylabel="standard deviation of scores")
    return fig


def softmax_scatter_figure(raw: torch.Tensor, d: int) -> Figure:
    """Softmax probability and negative log-softmax of every score, raw vs divided by √d,
    plotted against the raw dot product."""
    raw = raw.detach().double()
    scaled = raw / math.sqrt(d)
    x = raw.flatten().numpy()
    fig, axes = new_figure(1, 2, figsize=(10.5, 3.9))
    for ax, transform, ylabel, title in (
        (axes[0, 0], lambda s: torch.softmax(s, -1), "softmax probability",
         "Softmax probabilities"),
        (axes[0, 1], lambda s: -torch.log_softmax(s, -1), "−log softmax (nats)",
         "Negative log-softmax"),
    ):
        ax.scatter(x, transform(raw).flatten().numpy(), s=6, marker="o", color=color(1),
                   alpha=0.5, label="softmax(QKᵀ)")
        ax.scatter(x, transform(scaled).flatten().numpy(), s=6, marker="^", color=color(0),
                   alpha=0.5, label="softmax(QKᵀ/√d)")
        label_axes(ax, title=f"{title}, d = {d}", xlabel="raw score q·k", ylabel=ylabel)
    return fig


def saturation_figure(sweep: SaturationSweep) -> Figure:
    """Mean row entropy, mean largest probability and one-hot share against d."""
    fig, axes = new_figure(1, 3, figsize=(12.0, 3.8))
    panels = (
        ("entropy", "Mean row entropy", "entropy (nats)"),
        ("max_prob", "Mean largest probability", "max probability"),
        ("one_hot", "Share of one-hot-like rows", f"share of rows with max p ≥ {ONE_HOT_THRESHOLD:g}"),
    )
    for ax, (field, title, ylabel) in zip(axes[0], panels):
        ax.plot(sweep.dims, getattr(sweep, f"{field}_raw"), "o-", color=color(1), label="QKᵀ (raw)")
        ax.plot(sweep.dims, getattr(sweep, f"{field}_scaled"), "^--", color=color(0), label="QKᵀ/√d")
        if field == "entropy":
            ax.axhline(sweep.log_n, color=color(7), ls=":", lw=1.5, label="log n (uniform)")
        ax.set_xscale("log", base=2)
        label_axes(ax, title=title, xlabel="dimension d (log scale)", ylabel=ylabel)
    return fig


def gradient_figure(scan: GradientScan, marks: Mapping[str, float] | None = None) -> Figure:
    """Softmax Jacobian norm and gradient norm reaching the scores against the logit scale."""
    fig, axes = new_figure(figsize=(8.0, 4.0))
    ax = axes[0, 0]
    ax.plot(scan.scales, scan.grad_norm, "o-", ms=4, color=color(0), label="‖∂L/∂z‖, mean over rows")
    ax.plot(scan.scales, scan.grad_norm_median, "s--", ms=4, color=color(2),
            label="‖∂L/∂z‖, median over rows")
    ax.plot(scan.scales, scan.jacobian_norm, "^:", ms=4, color=color(1),
            label="‖softmax Jacobian‖_F, mean")
    for i, (name, scale) in enumerate((marks or {}).items()):
        ax.axvline(scale, color=color(7), ls=("-", "--", "-.", ":")[i % 4], lw=1, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 3)
    label_axes(ax, title="Gradient through softmax vs logit scale",
               xlabel="logit standard deviation s (log scale)", ylabel="norm (log scale)")
    ax.legend(fontsize=8, loc="lower left")
    return fig


# -- the temperature panel ------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _panel_logits(d: int, scaled: bool) -> np.ndarray:
    logits = qk_scores(PANEL_N, d, scaled=scaled)[0].numpy()
    logits.setflags(write=False)
    return logits


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in NumPy (the panel's small arrays: faster than a torch call)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def attention_row(d: int, temperature: float, scaled: bool) -> tuple[np.ndarray, np.ndarray]:
    """The logits of query 0 over the panel's keys (already divided by √d if ``scaled``)
    and its softmax(logits / temperature), sorted from largest to smallest."""
    logits = _panel_logits(int(d), bool(scaled))
    return logits, np.sort(_softmax_rows(logits / temperature))[::-1]


@lru_cache(maxsize=1024)
def _temperature_curves(
    d: int, scaled: bool
) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None]:
    """Entropy / log n and max probability of the panel row over PANEL_TEMPERATURES, and the
    (lowest, highest) temperature of its Goldilocks zone (``None`` if there is none).
    They depend on d and the scaling only, not on the current temperature."""
    curve = _softmax_rows(_panel_logits(d, scaled)[None, :] / PANEL_TEMPERATURES[:, None])
    curve_h = _entropy_rows(curve) / math.log(PANEL_N)
    curve_p = curve.max(axis=-1)
    for a in (curve_h, curve_p):
        a.setflags(write=False)
    zone = (curve_p < ONE_HOT_LIKE) & (curve_h < UNIFORM_LIKE)
    bounds = ((float(PANEL_TEMPERATURES[zone][0]), float(PANEL_TEMPERATURES[zone][-1]))
              if zone.any() else None)
    return curve_h, curve_p, bounds


def row_regime(entropy: float, max_prob: float, n: int = PANEL_N) -> str:
    """"uniform-like", "one-hot-like" or "Goldilocks zone" for a row's entropy and max p."""
    if max_prob >= ONE_HOT_LIKE:
        return "one-hot-like"
    if entropy >= UNIFORM_LIKE * math.log(n):
        return "uniform-like"
    return "Goldilocks zone"


def temperature_figure(d: int = 64, temperature: float = 1.0, scaled: bool = True) -> Figure:
    """One attention row's distribution (left) and its entropy and max p against T (right)."""
    fig, axes = new_figure(1, 2, figsize=(9.0, 3.5))
    # An Agg canvas of its own: savefig then reuses one renderer (and its text-metrics cache)
    # across redraws instead of creating a fresh canvas and renderer on every PNG.
    FigureCanvasAgg(fig)
    left, right = axes[0]
    # one StepPatch instead of 50 bars: a single artist to update and draw
    left.stairs(np.zeros(PANEL_N), np.arange(PANEL_N + 1) + 0.5, fill=True, color=color(0),
                label="softmax(z / T)")
    left.axhline(1 / PANEL_N, color=color(1), ls="--", lw=1.5, label=f"uniform 1/n = {1 / PANEL_N:.2f}")
    left.set_ylim(0, 1.02)
    left.set_xlim(0, PANEL_N + 1)
    label_axes(left, title="", xlabel="key, sorted by probability (rank)", ylabel="attention probability")
    left.legend(loc="upper right", fontsize=9)
    nan = np.full_like(PANEL_TEMPERATURES, np.nan)
    right.plot(PANEL_TEMPERATURES, nan, "-", color=color(0), label="entropy / log n")
    right.plot(PANEL_TEMPERATURES, nan, "--", color=color(1), label="max probability")
    right.plot([], [], "o", color=color(7), ms=7, label="current T")
    right.plot([], [], "s", color=color(7), ms=6, mfc="none")
    right.set_xscale("log")
    right.set_xlim(PANEL_TEMPERATURES[0], PANEL_TEMPERATURES[-1])
    right.set_ylim(-0.02, 1.05)
    # Fixed ticks with plain-text labels: no tick search, no mathtext, no minor log ticks on
    # every redraw.
    right.xaxis.set_major_locator(FixedLocator(_PANEL_T_TICKS))
    right.xaxis.set_major_formatter(FixedFormatter([f"{t:g}" for t in _PANEL_T_TICKS]))
    right.xaxis.set_minor_locator(NullLocator())
    for ax, ticks in ((left, _PANEL_P_TICKS), (right, _PANEL_P_TICKS)):
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FixedFormatter([f"{t:g}" for t in ticks]))
    left.xaxis.set_major_locator(FixedLocator(_PANEL_RANK_TICKS))
    left.xaxis.set_major_formatter(FixedFormatter([f"{t:d}" for t in _PANEL_RANK_TICKS]))
    label_axes(right, title="", xlabel="temperature T (log scale)", ylabel="share (0 to 1)")
    right.legend(loc="center right", fontsize=8)
    # the shaded Goldilocks span: one rectangle, moved (or hidden) on every redraw
    right._zone = right.axvspan(1.0, 1.0, color=color(2), alpha=0.15, lw=0)  # type: ignore[attr-defined]
    update_temperature_figure(fig, d=d, temperature=temperature, scaled=scaled)
    # Lay the figure out once, then freeze it: a redraw then skips constrained layout, and the
    # axes no longer jump when the titles change length.  ``None`` (not "none", which leaves a
    # placeholder engine that makes savefig draw the figure twice) removes the engine.
    fig.draw_without_rendering()
    for ax in (left, right):  # pin the axis labels where the layout put them (axes fraction,
        # so the same at any dpi): a redraw then skips measuring every tick label to place them
        x_label, y_label = ax.xaxis.label, ax.yaxis.label
        to_axes = ax.transAxes.inverted()
        ax.xaxis.set_label_coords(0.5, to_axes.transform(x_label.get_transform().transform(
            x_label.get_position()))[1])
        ax.yaxis.set_label_coords(to_axes.transform(y_label.get_transform().transform(
            y_label.get_position()))[0], 0.5)
    fig.set_layout_engine(None)
    if fig.get_layout_engine() is not None:  # rcParams asked for a default layout engine
        fig.set_layout_engine("none")
    return fig


def update_temperature_figure(fig: Figure, d: int, temperature: float, scaled: bool) -> str:
    """Redraw :func:`temperature_figure` in place; returns a readout."""
    left, right = fig.axes[0], fig.axes[1]
    logits, probs = attention_row(d, temperature, scaled)
    left.patches[0].set_data(probs)
    entropy = float(_entropy_rows(probs))
    max_prob = float(probs[0])
    regime = row_regime(entropy, max_prob)
    left.set_title(f"d = {d}, T = {temperature:.3g}, {'÷√d' if scaled else 'no scaling'}: {regime}",
                   fontsize=11, y=1.0)  # a fixed y: no title placement search per redraw

    curve_h, curve_p, zone = _temperature_curves(int(d), bool(scaled))
    entropy_line, max_line, marker_h, marker_p = right.lines[:4]
    entropy_line.set_ydata(curve_h)
    max_line.set_ydata(curve_p)
    marker_h.set_data([temperature], [entropy / math.log(PANEL_N)])
    marker_p.set_data([temperature], [max_prob])
    span = right._zone  # type: ignore[attr-defined]
    span.set_visible(zone is not None)
    if zone is not None:
        lo, hi = zone
        span.set_x(lo)
        span.set_width(hi - lo)
    right.set_title(f"Goldilocks zone (shaded): T ∈ [{lo:.2g}, {hi:.2g}]" if zone is not None
                    else "no Goldilocks zone in range", fontsize=11, y=1.0)
    return (f"logit std = {logits.std() / temperature:.3g}, entropy = {entropy:.3f} nats "
            f"(uniform: log {PANEL_N} = {math.log(PANEL_N):.3f}), max p = {max_prob:.3f} → {regime}")


# -- training: scaled vs unscaled attention -------------------------------------------------
def training_figure(*comparisons: ScalingComparison) -> Figure:
    """Training loss against step, one panel per head size of each comparison: median over
    seeds (line) and the range over seeds (band), for scaled and unscaled attention."""
    if not comparisons or not all(isinstance(c, ScalingComparison) for c in comparisons):
        raise TypeError("training_figure needs one or more ScalingComparison results")
    panels = [(c, head) for c in comparisons for head in c.head_sizes]
    fig, axes = new_figure(1, len(panels), figsize=(5.2 * len(panels), 3.8))
    for ax, (comparison, head) in zip(axes[0], panels):
        steps = np.arange(1, comparison.steps + 1)
        n = len(comparison.seeds)
        for i, (scaled, name, style) in enumerate(((True, "scaled: QKᵀ/√d", "-"),
                                                   (False, "unscaled: QKᵀ", "--"))):
            curves = comparison.losses[head, scaled]
            ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), color=color(i), alpha=0.2,
                            lw=0, label=f"{name}, range over {n} seeds")
            ax.plot(steps, np.median(curves, axis=0), style, color=color(i), lw=2,
                    label=f"{name}, median")
        ax.set_ylim(0, None)
        label_axes(ax, title=f"Head size d = {head}", xlabel="training step (batch of 16 new examples)",
                   ylabel="cross-entropy loss (nats)")
    return fig
