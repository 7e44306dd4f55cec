"""Figures of notebook 04: the growth of QKᵀ with d, softmax saturation, temperature."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import cast

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from helpers.attention import (
    ONE_HOT_THRESHOLD,
    PANEL_N,
    PANEL_TEMPERATURES,
    GradientScan,
    SaturationSweep,
    StdSweep,
    TemperatureCurves,
    TemperatureRow,
    softmax_raw_and_scaled,
    temperature_curves,
    temperature_row,
)
from helpers.claims import seed_band
from helpers.plots import artist, color, freeze_layout, label_axes, new_figure

#: Fixed tick positions of the panel (no tick search on a redraw).
_PANEL_T_TICKS = (0.01, 0.1, 1.0, 10.0, 100.0)
_PANEL_P_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_PANEL_RANK_TICKS = (1, 10, 20, 30, 40, 50)


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
    both = softmax_raw_and_scaled(raw, d)
    fig, axes = new_figure(1, 2, figsize=(10.5, 3.9))
    for ax, (raw_y, scaled_y), ylabel, title in (
        (axes[0, 0], (both.probs_raw, both.probs_scaled), "softmax probability", "Softmax probabilities"),
        (axes[0, 1], (both.nll_raw, both.nll_scaled), "−log softmax (nats)", "Negative log-softmax"),
    ):
        ax.scatter(both.scores, raw_y, s=6, marker="o", color=color(1), alpha=0.5, label="softmax(QKᵀ)")
        ax.scatter(both.scores, scaled_y, s=6, marker="^", color=color(0), alpha=0.5,
                   label="softmax(QKᵀ/√d)")
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
    for ax, (field, title, ylabel) in zip(axes[0], panels, strict=True):
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
    right.axvspan(1.0, 1.0, color=color(2), alpha=0.15, lw=0, gid="zone")
    update_temperature_figure(fig, temperature_row(d, temperature, scaled), temperature_curves(d, scaled),
                              d=d, temperature=temperature, scaled=scaled)
    # Lay the figure out once, then freeze it: a redraw then skips constrained layout, and the
    # axes no longer jump when the titles change length.
    return freeze_layout(fig, pin_labels=True)


def update_temperature_figure(fig: Figure, row: TemperatureRow, curves: TemperatureCurves, *, d: int,
                              temperature: float, scaled: bool) -> None:
    """Redraw :func:`temperature_figure` in place for the attention ``row`` at ``temperature``
    and its ``curves`` over the temperatures (both from :mod:`helpers.attention`)."""
    left, right = fig.axes[0], fig.axes[1]
    cast(StepPatch, left.patches[0]).set_data(row.probs)  # the ax.stairs bars
    left.set_title(f"d = {d}, T = {temperature:.3g}, {'÷√d' if scaled else 'no scaling'}: {row.regime}",
                   fontsize=11, y=1.0)  # a fixed y: no title placement search per redraw
    entropy_line, max_line, marker_h, marker_p = right.lines[:4]
    entropy_line.set_ydata(curves.entropy_share)
    max_line.set_ydata(curves.max_prob)
    marker_h.set_data([temperature], [row.entropy / math.log(len(row.probs))])
    marker_p.set_data([temperature], [row.max_prob])
    span = artist(right, "zone")
    span.set_visible(curves.zone is not None)
    if curves.zone is not None:
        lo, hi = curves.zone
        span.set_x(lo)
        span.set_width(hi - lo)
    right.set_title(f"Goldilocks zone (shaded): T ∈ [{lo:.2g}, {hi:.2g}]" if curves.zone is not None
                    else "no Goldilocks zone in range", fontsize=11, y=1.0)


# -- training: scaled vs unscaled attention -------------------------------------------------
_VARIANTS = (("scaled", "scaled: QKᵀ/√d", "-"), ("unscaled", "unscaled: QKᵀ", "--"),
             ("matched", "control: unscaled, W_Q, W_K × d^(-1/4)", ":"))
"""The versions of :data:`helpers.attention_training.VARIANTS`: key, legend label, line style."""
_LEGACY = {True: "scaled", False: "unscaled"}


def _by_variant(curves: Mapping[tuple[int, bool | str], np.ndarray], name: str
                ) -> tuple[list[int], list[tuple[int, str, str, str]], dict[tuple[int, str], np.ndarray]]:
    """Head sizes, the variants drawn (colour index, key, label, style) and the curves keyed by
    (head size, variant name); a bool variant means scaled (True) or unscaled (False)."""
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(f"{name} must be a non-empty mapping (head size, variant) -> array")
    keyed = {(int(h), _LEGACY[v] if isinstance(v, bool) else str(v)): value for (h, v), value in curves.items()}
    unknown = sorted({v for _, v in keyed} - {key for key, _, _ in _VARIANTS})
    if unknown:
        raise ValueError(f"{name}: unknown variants {unknown}; use scaled, unscaled, matched")
    heads = sorted({h for h, _ in keyed})
    drawn = [(i, key, label, style) for i, (key, label, style) in enumerate(_VARIANTS)
             if key != "matched" or any(v == "matched" for _, v in keyed)]
    missing = [(h, key) for h in heads for _, key, _, _ in drawn if (h, key) not in keyed]
    if missing:
        raise ValueError(f"{name} needs a scaled and an unscaled entry (and matched, if any has one) "
                         f"per head size; missing {missing}")
    return heads, drawn, keyed


def training_figure(steps: np.ndarray, curves: Mapping[tuple[int, bool | str], np.ndarray], *,
                    note: str = "", references: Mapping[str, float] | None = None) -> Figure:
    """Training loss against step, one panel per head size, scaled and unscaled attention (and
    the control ``"matched"`` when ``curves`` has it).

    ``curves[head size, variant]`` (variant ``"scaled"``, ``"unscaled"``, ``"matched"``, or a
    bool: ``True`` scaled, ``False`` unscaled) holds one loss curve per seed (``[seeds, len(steps)]``, or one
    1-D curve); the line is the median over seeds and, with two or more seeds, the band their
    range.  ``note`` ends each panel's title (e.g. the learning rate); ``references`` draws
    labelled horizontal lines (label -> loss).

    Raises:
        TypeError: if ``curves`` is not a non-empty mapping.
        ValueError: for a head size without both scalings, an unknown variant or curves of the
            wrong length.
    """
    heads, drawn, keyed = _by_variant(curves, "curves")
    steps = np.asarray(steps)
    fig, axes = new_figure(1, len(heads), figsize=(4.6 * len(heads), 3.8), sharey=True)
    for ax, head in zip(axes[0], heads, strict=True):
        for i, variant, name, style in drawn:
            rows = np.atleast_2d(np.asarray(keyed[head, variant], dtype=np.float64))
            if rows.shape[1] != len(steps):
                raise ValueError(f"curves[{head}, {variant}] must have {len(steps)} points per seed, "
                                 f"got {rows.shape[1]}")
            band = seed_band(rows)
            if len(rows) > 1:
                ax.fill_between(steps, band.low, band.high, color=color(i), alpha=0.2, lw=0,
                                label=f"{name}, range over {len(rows)} seeds")
            label = f"{name}, median" if len(rows) > 1 else name
            ax.plot(steps, band.median, style, color=color(i), lw=2, label=label)
        for j, (label, value) in enumerate((references or {}).items()):
            ax.axhline(value, color="0.3", lw=1, ls=":" if j == 0 else "-.", label=label)
        ax.set_ylim(0, None)
        label_axes(ax, title=f"Head size d = {head}{note}", xlabel="training step (batches of new examples)",
                   ylabel="cross-entropy loss (nats)", legend=len(heads) == 1)
    if len(heads) > 1:  # below the panels: no curve hidden
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(drawn))
    return fig


def lr_sweep_figure(lrs: np.ndarray, values: Mapping[tuple[int, bool | str], np.ndarray], *,
                    ylabel: str, note: str = "") -> Figure:
    """A per-seed quantity against the learning rate, one panel per head size: median over
    seeds (markers and line) and range (error bars), scaled and unscaled attention (and the
    control ``"matched"`` when ``values`` has it; keys as in :func:`training_figure`).

    ``values[head size, variant]`` is ``[learning rates, seeds]``; ``note`` ends each panel's title.

    Raises:
        TypeError: if ``values`` is not a non-empty mapping.
        ValueError: for a head size without both scalings, an unknown variant or values of the
            wrong shape.
    """
    heads, drawn, keyed = _by_variant(values, "values")
    lrs = np.asarray(lrs, dtype=np.float64)
    fig, axes = new_figure(1, len(heads), figsize=(4.2 * len(heads), 4.0), sharey=True)
    for ax, head in zip(axes[0], heads, strict=True):
        for j, (i, variant, name, style) in enumerate(drawn):
            rows = np.asarray(keyed[head, variant], dtype=np.float64)
            if rows.ndim != 2 or rows.shape[0] != len(lrs):
                raise ValueError(f"values[{head}, {variant}] must be [{len(lrs)} learning rates, seeds], "
                                 f"got shape {rows.shape}")
            median = np.nanmedian(rows, axis=1)
            low, high = np.nanmin(rows, axis=1), np.nanmax(rows, axis=1)
            shift = 1.08 ** (j - (len(drawn) - 1) / 2)  # side by side, so the error bars do not hide each other
            ax.errorbar(lrs * shift, median, yerr=[median - low, high - median], fmt="o" + style,
                        color=color(i), lw=2, capsize=3,
                        label=f"{name}: median, range over {rows.shape[1]} seeds")
        ax.set_xscale("log")
        ax.set_ylim(0, None)
        label_axes(ax, title=f"Head size d = {head}{note}", xlabel="learning rate (Adam)", ylabel=ylabel,
                   legend=False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(drawn))  # below the panels: no data hidden
    return fig
