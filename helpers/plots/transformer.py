"""Figures of notebook 06: gradients at initialization, loss curves, residual-stream norms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.plots import color, label_axes, new_figure
from helpers.transformer import NORMS, RunKey, RunResult

LABELS = {"post": "post-LN (original)", "pre": "pre-LN (GPT-2)", "none": "no LN"}
STYLES = {"post": ("-", "o"), "pre": ("--", "s"), "none": (":", "^")}
COLOR_INDEX = {"post": 3, "pre": 0, "none": 1}  # vermillion, blue, orange


def variant_style(norm: str) -> dict[str, object]:
    """Colour, line style and marker of a variant, the same in every figure."""
    line, marker = STYLES[norm]
    return {"color": color(COLOR_INDEX[norm]), "linestyle": line, "marker": marker}


def gradient_norms_figure(grads: Mapping[str, Mapping[str, np.ndarray]],
                          depth_ratios: Mapping[int, float] | None = None) -> Figure:
    """Per-block gradient norms at initialization for each variant (log scale).

    Args:
        grads: ``{norm: layer_gradient_norms(...)}``.
        depth_ratios: optional ``{n_layers: post/pre ratio of the last block's FFN W2
            gradient}``, drawn in a second panel.
    """
    ncols = 2 if depth_ratios else 1
    fig, axes = new_figure(1, ncols, figsize=(5.2 * ncols, 3.8))
    ax = axes[0, 0]
    for norm, values in grads.items():
        w2 = values["ffn_w2"]
        ax.plot(np.arange(1, len(w2) + 1), w2, label=LABELS[norm], **variant_style(norm))
    ax.set_yscale("log")
    n_layers = len(next(iter(grads.values()))["ffn_w2"])
    ax.set_xticks(np.arange(1, n_layers + 1))
    label_axes(ax, title="Gradient at initialization, per block",
               xlabel="block (1 = next to the input)", ylabel="‖∇ W₂ of the FFN‖ (log scale)")
    if depth_ratios:
        ax = axes[0, 1]
        depths = sorted(depth_ratios)
        ax.plot(depths, [depth_ratios[d] for d in depths], color=color(2), marker="D",
                label="measured post/pre ratio (mean of seeds)")
        ax.plot(depths, np.sqrt(np.array(depths) / depths[0]) * depth_ratios[depths[0]],
                color=color(7), linestyle="--", label="∝ √(number of blocks)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        label_axes(ax, title="Last block: post-LN gradient ÷ pre-LN gradient",
                   xlabel="number of blocks (log scale)", ylabel="ratio of ‖∇ W₂‖")
    return fig


def _band(ax: Axes, runs: Sequence[RunResult], norm: str, label: str | None, alpha: float = 0.25,
          smooth: int = 5) -> None:
    """Median over seeds as a line, min–max over seeds as a shaded band (moving average)."""
    losses = np.stack([r.losses for r in runs])
    losses = np.where(np.isfinite(losses), losses, np.nan)
    kernel = np.ones(smooth) / smooth
    smoothed = np.stack([np.convolve(row, kernel, mode="valid") for row in losses])
    steps = np.arange(smoothed.shape[1]) + smooth // 2
    style = variant_style(norm)
    with np.errstate(all="ignore"):
        low, mid, high = np.nanmin(smoothed, 0), np.nanmedian(smoothed, 0), np.nanmax(smoothed, 0)
    ax.fill_between(steps, low, high, color=style["color"], alpha=alpha, linewidth=0)
    ax.plot(steps, mid, color=style["color"], linestyle=style["linestyle"], label=label,
            marker=style["marker"], markevery=max(1, len(steps) // 6))


def runs_of(grid: Mapping[RunKey, RunResult], norm: str, lr: float, warmup: int) -> list[RunResult]:
    """The runs of one grid cell (all seeds), in seed order."""
    return [grid[k] for k in sorted(grid) if k[:3] == (norm, lr, warmup)]


def loss_curves_figure(grid: Mapping[RunKey, RunResult], lr: float, warmups: Sequence[int],
                       norms: Sequence[str] = NORMS) -> Figure:
    """Training loss of each variant at one learning rate, one panel per warm-up length.

    Lines are the median over seeds, bands the min–max over seeds (5-step moving average).
    """
    fig, axes = new_figure(1, len(warmups), figsize=(5.0 * len(warmups), 3.8), sharey=True)
    for ax, warmup in zip(axes[0], warmups):
        for norm in norms:
            runs = runs_of(grid, norm, lr, warmup)
            _band(ax, runs, norm, f"{LABELS[norm]} ({len(runs)} seeds)")
        ax.set_yscale("log")
        ax.axhline(np.log(10), color=color(7), linewidth=1, linestyle="-.",
                   label="ln 10: guessing a digit")
        title = f"lr = {lr:g}, " + (f"warm-up {warmup} steps" if warmup else "no warm-up")
        label_axes(ax, title=title, xlabel="training step", ylabel="training loss (log scale)")
    return fig


def residual_norms_figure(grid: Mapping[RunKey, RunResult], lr: float, warmup: int,
                          norms: Sequence[str] = NORMS, d_model: int | None = None) -> Figure:
    """Mean norm of the residual stream after each block, at initialization and after training."""
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.8), sharey=True)
    for ax, when in zip(axes[0], ("init", "final")):
        for norm in norms:
            runs = runs_of(grid, norm, lr, warmup)
            curves = np.stack([r.residual_init if when == "init" else r.residual_final for r in runs])
            with np.errstate(all="ignore"):
                mean = np.nanmean(curves, 0)
            ax.plot(np.arange(len(mean)), mean, label=LABELS[norm], **variant_style(norm))
        if d_model:
            ax.axhline(np.sqrt(d_model), color=color(7), linewidth=1, linestyle="-.",
                       label=f"√d_model = {np.sqrt(d_model):.0f} (a LayerNorm output)")
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(mean)))
        schedule = f"warm-up {warmup}" if warmup else "no warm-up"
        title = "At initialization" if when == "init" else f"After training (lr {lr:g}, {schedule})"
        label_axes(ax, title=title, xlabel="depth (0 = embeddings, k = after block k)",
                   ylabel="mean ‖residual vector‖ (log scale)")
    return fig


def browse_figure() -> Figure:
    """The empty two-panel figure the browsing panel redraws."""
    fig, _ = new_figure(1, 2, figsize=(9.0, 3.4))
    return fig


def update_browse_figure(fig: Figure, grid: Mapping[RunKey, RunResult], norm: str, lr: float,
                         warmup: int) -> str:
    """Redraw :func:`browse_figure` for one grid cell; returns a one-line readout."""
    left, right = fig.axes
    left.clear()
    right.clear()
    for other in NORMS:
        if other != norm and runs_of(grid, other, lr, warmup):
            _band(left, runs_of(grid, other, lr, warmup), other, LABELS[other], alpha=0.08)
            left.lines[-1].set_alpha(0.35)
    runs = runs_of(grid, norm, lr, warmup)
    if not runs:
        raise ValueError(f"no precomputed runs for norm={norm!r}, lr={lr}, warmup={warmup}")
    _band(left, runs, norm, f"{LABELS[norm]} ({len(runs)} seeds)", alpha=0.3)
    left.set_yscale("log")
    left.set_ylim(1e-4, 1e3)
    warm = f"warm-up {warmup}" if warmup else "no warm-up"
    label_axes(left, title=f"Loss: {LABELS[norm]}, lr {lr:g}, {warm}", xlabel="training step",
               ylabel="training loss (log scale)")
    left.legend(fontsize=8)
    init = np.mean([r.residual_init for r in runs], 0)
    with np.errstate(all="ignore"):
        final = np.nanmean([r.residual_final for r in runs], 0)
    depth = np.arange(len(init))
    style = variant_style(norm)
    right.plot(depth, init, color=style["color"], linestyle=":", marker="o", label="at initialization")
    right.plot(depth, final, color=style["color"], linestyle="-", marker="s", label="after training")
    right.set_yscale("log")
    right.set_ylim(1, 1e4)
    right.set_xticks(depth)
    label_axes(right, title="Residual-stream norm", xlabel="depth (0 = embeddings)",
               ylabel="mean ‖residual‖ (log scale)")
    right.legend(fontsize=8)
    digit = np.mean([np.nan_to_num(r.digit_accuracy) for r in runs])
    whole = np.mean([np.nan_to_num(r.sequence_accuracy) for r in runs])
    diverged = sum(not np.isfinite(r.losses).all() for r in runs)
    return (f"{LABELS[norm]}, lr {lr:g}, {warm}: digit accuracy {digit:.0%}, "
            f"whole sequences {whole:.0%}, diverged {diverged}/{len(runs)} seeds")
