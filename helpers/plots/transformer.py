"""Figures of notebook 06: gradients at initialization, loss curves, residual-stream norms."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from helpers.claims import seed_band
from helpers.plots import color, freeze_layout, label_axes, new_figure
from helpers.transformer import NORMS
from helpers.transformer_runs import (
    CellSummary,
    EarlySteps,
    RunKey,
    RunResult,
    cell_summary,
    learned,
    loss_band,
    residual_band,
    runs_of,
    stability_table,
)

__all__ = ["LABELS", "BrowseView", "early_steps_figure", "gradient_norms_figure", "loss_curves_figure",
           "residual_norms_figure", "residual_track_figure", "stability_depths_figure",
           "variant_style"]

LABELS = {"post": "post-LN (original)", "pre": "pre-LN (GPT-2)", "none": "no LN"}
STYLES = {"post": ("-", "o"), "pre": ("--", "s"), "none": (":", "^")}
COLOR_INDEX = {"post": 3, "pre": 0, "none": 1}  # vermillion, blue, orange


def variant_style(norm: str) -> dict[str, Any]:
    """Colour, line style and marker of a variant, the same in every figure."""
    line, marker = STYLES[norm]
    return {"color": color(COLOR_INDEX[norm]), "linestyle": line, "marker": marker}


def gradient_norms_figure(grads: Mapping[str, Mapping[str, np.ndarray]],
                          depth_ratios: Mapping[int, float] | None = None) -> Figure:
    """Per-block gradient norms at initialization for each variant (log scale).

    Args:
        grads: ``{norm: layer_gradient_norms(...)}``.
        depth_ratios: optional ``{n_layers: post/pre ratio of the last block's FFN W2
            gradient, median over seeds}``, drawn in a second panel.
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
                label="measured post/pre ratio (median of seeds)")
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
    band = loss_band(runs, smooth)
    style = variant_style(norm)
    ax.fill_between(band.steps, band.low, band.high, color=style["color"], alpha=alpha, linewidth=0)
    ax.plot(band.steps, band.median, color=style["color"], linestyle=style["linestyle"], label=label,
            marker=style["marker"], markevery=max(1, len(band.steps) // 6))


def loss_curves_figure(grid: Mapping[RunKey, RunResult], lr: float, warmups: Sequence[int],
                       norms: Sequence[str] = NORMS) -> Figure:
    """Training loss of each variant at one learning rate, one panel per warm-up length.

    Lines are the median over seeds, bands the min–max over seeds (5-step moving average).
    """
    fig, axes = new_figure(1, len(warmups), figsize=(5.0 * len(warmups), 3.8), sharey=True)
    for ax, warmup in zip(axes[0], warmups, strict=True):
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
                          norms: Sequence[str] = NORMS, d_model: int | None = None,
                          only_learned: bool = True) -> Figure:
    """Norm of the residual stream after each block, at initialization and after training.

    Lines are the median over the runs, bands their min–max.  After training, with
    ``only_learned`` (the default) only the runs that learned the task (:func:`learned`)
    count; otherwise every run whose weights stayed finite (a run stuck at guessing still
    has a residual stream).  The legend gives how many runs each line rests on.
    """
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.8), sharey=True)
    depth = np.arange(1)
    for ax, when in zip(axes[0], ("init", "final"), strict=True):
        for norm in norms:
            runs = runs_of(grid, norm, lr, warmup)
            if when == "init" or only_learned:
                band = residual_band(runs, when)
                kept = len(runs) if when == "init" else sum(learned(r) for r in runs)
            else:
                finite = [r.residual_final for r in runs if np.isfinite(r.residual_final).all()]
                band = seed_band(finite) if finite else None
                kept = len(finite)
            if band is None:
                continue
            depth = np.arange(len(band.median))
            style = variant_style(norm)
            ax.fill_between(depth, band.low, band.high, color=style["color"], alpha=0.2, linewidth=0)
            ax.plot(depth, band.median, label=f"{LABELS[norm]} ({kept}/{len(runs)} runs)", **style)
        if d_model:
            ax.axhline(np.sqrt(d_model), color=color(7), linewidth=1, linestyle="-.",
                       label=f"√d_model = {np.sqrt(d_model):.0f} (a LayerNorm output)")
        ax.set_yscale("log")
        ax.set_xticks(depth)
        schedule = f"warm-up {warmup}" if warmup else "no warm-up"
        which = "" if only_learned else ", every run"
        title = "At initialization" if when == "init" else f"After training (lr {lr:g}, {schedule}{which})"
        label_axes(ax, title=title, xlabel="depth (0 = embeddings, k = after block k)",
                   ylabel="mean ‖residual vector‖ (log scale)")
    return fig


class BrowseView:
    """The browsing panel's two-panel figure, drawn once and then updated in place.

    Everything that does not depend on the chosen cell is computed here: the seed bands of
    every (variant, lr, warm-up) cell are drawn once as hidden artists, and
    :meth:`update` only toggles visibility, moves line data and changes texts, so a
    redraw costs little more than rendering the picture.

    Args:
        grid: runs keyed ``(norm, lr, warmup_steps, seed)``; every (norm, lr, warm-up)
            combination of the values present must have been trained.
    """

    def __init__(self, grid: Mapping[RunKey, RunResult]) -> None:
        self.variants = [n for n in NORMS if any(k[0] == n for k in grid)]
        cells = sorted({k[:3] for k in grid}, key=lambda c: (NORMS.index(c[0]), c[1], c[2]))
        fig, axes = new_figure(1, 2, figsize=(9.0, 3.4))
        self.figure: Figure = fig
        left, right = axes[0]
        self._stats: dict[tuple[str, float, int], tuple[np.ndarray, np.ndarray]] = {}
        self._bands: dict[tuple[str, float, int], Artist] = {}
        self._residuals: dict[tuple[str, float, int], tuple[np.ndarray, np.ndarray]] = {}
        #: What the runs of each (variant, lr, warm-up) cell achieved (for the readout).
        self.summaries: dict[tuple[str, float, int], CellSummary] = {}
        self._seeds: dict[tuple[str, float, int], int] = {}
        n_steps = 1
        for cell in cells:
            norm, lr, warmup = cell
            runs = runs_of(grid, norm, lr, warmup)
            stats = loss_band(runs)
            steps = stats.steps
            n_steps = max(n_steps, int(steps[-1]) + 1 if len(steps) else 1)
            self._stats[cell] = (steps, stats.median)
            band = left.fill_between(steps, stats.low, stats.high, color=variant_style(norm)["color"],
                                     alpha=0.08, linewidth=0)
            band.set_visible(False)
            self._bands[cell] = band
            summary = self.summaries[cell] = cell_summary(runs)
            # After training: every run whose weights stayed finite, the same runs as the
            # loss band and the readout (a run stuck at guessing still has a stream).
            finite = [r.residual_final for r in runs if np.isfinite(r.residual_final).all()]
            final = seed_band(finite).median if finite else np.full_like(summary.residual_init, np.nan)
            self._residuals[cell] = (summary.residual_init, final)
            self._seeds[cell] = summary.seeds
        self._lines = {}
        for norm in self.variants:
            style = variant_style(norm)
            steps, mid = self._stats[next(c for c in cells if c[0] == norm)]
            (self._lines[norm],) = left.plot(steps, mid, color=style["color"],
                                             linestyle=style["linestyle"], marker=style["marker"],
                                             markevery=max(1, len(steps) // 6), label=LABELS[norm])
        left.set_yscale("log")
        left.set_ylim(1e-4, 1e3)
        left.set_xlim(0, n_steps)
        label_axes(left, title="Loss", xlabel="training step", ylabel="training loss (log scale)",
                   legend=False)
        self._left_legend = left.legend(fontsize=8)
        depth = np.arange(len(next(iter(self._residuals.values()))[0]))
        (self._init_line,) = right.plot(depth, depth * 0.0 + 1, linestyle=":", marker="o",
                                        label="at initialization (median)")
        (self._final_line,) = right.plot(depth, depth * 0.0 + 1, linestyle="-", marker="s",
                                         label="after training (median, every finite run)")
        right.set_yscale("log")
        right.set_ylim(1, 1e4)
        right.set_xlim(-0.3, depth[-1] + 0.3 if len(depth) else 1)
        right.set_xticks(depth)
        label_axes(right, title="Residual-stream norm", xlabel="depth (0 = embeddings)",
                   ylabel="mean ‖residual‖ (log scale)", legend=False)
        self._right_legend = right.legend(fontsize=8)
        for ax, (low_exp, high_exp) in ((left, (-4, 3)), (right, (0, 4))):
            exps = range(low_exp, high_exp + 1)
            # Plain-text decade labels (no mathtext parsing per redraw), no minor ticks.
            ax.yaxis.set_major_locator(FixedLocator([10.0**e for e in exps]))
            ax.yaxis.set_major_formatter(FixedFormatter([_decade(e) for e in exps]))
            ax.yaxis.set_minor_locator(NullLocator())
        self._left, self._right = left, right
        self._shown: list[Artist] = []
        # Lay the figure out once (with the longest title), then freeze it: no relayout,
        # no title placement per redraw.
        longest = max(cells, key=lambda c: len(_title(*c)))
        self.update(*longest)
        freeze_layout(fig)
        for ax in (left, right):
            ax.set_title(ax.get_title(), y=ax.title.get_position()[1])

    def update(self, norm: str, lr: float, warmup: int) -> None:
        """Show one grid cell (the panel's update in :mod:`helpers.widgets.transformer` calls this).

        Raises:
            ValueError: if the grid holds no runs for ``(norm, lr, warmup)``.
        """
        cell = (norm, lr, warmup)
        if cell not in self._stats:
            raise ValueError(f"no precomputed runs for norm={norm!r}, lr={lr}, warmup={warmup}")
        for band in self._shown:
            band.set_visible(False)
        self._shown = []
        for i, other in enumerate(self.variants):
            other_cell = (other, lr, warmup)
            line = self._lines[other]
            selected = other == norm
            steps, mid = self._stats[other_cell]
            line.set_data(steps, mid)
            line.set_alpha(1.0 if selected else 0.35)
            line.set_zorder(3 if selected else 2)
            band = self._bands[other_cell]
            band.set_alpha(0.3 if selected else 0.08)
            band.set_visible(True)
            self._shown.append(band)
            label = f"{LABELS[other]} ({self._seeds[other_cell]} seeds)" if selected else LABELS[other]
            self._left_legend.get_texts()[i].set_text(label)
            self._left_legend.legend_handles[i].set_alpha(1.0 if selected else 0.35)
        self._left.title.set_text(_title(norm, lr, warmup))
        init, final = self._residuals[cell]
        colour = variant_style(norm)["color"]
        self._init_line.set_ydata(init)
        self._final_line.set_ydata(final)
        for line in (self._init_line, self._final_line):
            line.set_color(colour)
        for handle in self._right_legend.legend_handles:
            handle.set_color(colour)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade(exponent: int) -> str:
    """``10`` with a Unicode superscript exponent, e.g. ``10⁻⁴``."""
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def _schedule(warmup: int) -> str:
    return f"warm-up {warmup}" if warmup else "no warm-up"


def _title(norm: str, lr: float, warmup: int) -> str:
    return f"Loss: {LABELS[norm]}, lr {lr:g}, {_schedule(warmup)}"


def _stability_row(axes: Sequence[Axes], grid: Mapping[RunKey, RunResult], norms: Sequence[str],
                   label: str = "") -> None:
    """One panel per warm-up: how many seeds of each variant learned, against the learning rate."""
    table = stability_table(dict(grid))
    warmups = sorted({k[2] for k in grid})
    n_seeds = len({k[3] for k in grid})
    offsets = [float(o) for o in np.linspace(-0.06, 0.06, len(norms))] if len(norms) > 1 else [0.0]
    for ax, warmup in zip(axes, warmups, strict=True):
        for offset, norm in zip(offsets, norms, strict=True):
            counts = table[(norm, warmup)]
            lrs = sorted(counts)
            ax.plot(np.array(lrs) * 10**offset, [counts[lr] for lr in lrs], label=LABELS[norm],
                    **variant_style(norm))
        ax.set_xscale("log")
        # "2e-2", not "0.02": neighbouring rates of a fine grid sit close on a log axis.
        ax.set_xticks(lrs, [f"{lr:.0e}".replace("e-0", "e-") for lr in lrs], rotation=35)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_yticks(range(0, n_seeds + 1, 1 if n_seeds <= 6 else 2))
        ax.set_ylim(-0.3, n_seeds + 0.3)
        label_axes(ax, title=f"{label}{_schedule(warmup)}", xlabel="peak learning rate (log scale)",
                   ylabel=f"seeds that learned (of {n_seeds})")


def stability_depths_figure(grids: Mapping[int, Mapping[RunKey, RunResult]],
                            norms: Sequence[str] = NORMS) -> Figure:
    """How many seeds learned the task, against the learning rate: one panel per warm-up,
    one row per number of blocks.

    Args:
        grids: ``{n_layers: grid}``, every grid with the same warm-ups.

    Raises:
        ValueError: for no grids.
    """
    if not grids:
        raise ValueError("grids must hold at least one {n_layers: grid} entry")
    warmups = sorted({k[2] for k in next(iter(grids.values()))})
    fig, axes = new_figure(len(grids), len(warmups), figsize=(5.0 * len(warmups), 3.3 * len(grids)),
                           sharex=True, sharey=True)
    for row, (depth, grid) in zip(axes, grids.items(), strict=True):
        _stability_row(row, grid, norms, label=f"{depth} blocks, ")
    return fig


def residual_track_figure(steps: np.ndarray, tracks: Mapping[tuple[str, int], np.ndarray], lr: float,
                          d_model: int | None = None) -> Figure:
    """The last block's residual-stream norm during training, one panel per warm-up.

    Lines are the median over seeds, bands the min–max (runs that blew up included: the band
    shows them; a run whose weights became ``nan`` drops out from then on).

    Args:
        steps: the training steps of the measurements, ``(checkpoints,)``.
        tracks: ``{(norm, warmup): array [seeds, checkpoints]}``.
        lr: the peak learning rate (for the titles).
        d_model: draws √d_model, a LayerNorm output's norm, when given.

    Raises:
        ValueError: if a track's length differs from ``steps``'.
    """
    warmups = sorted({w for _, w in tracks})
    fig, axes = new_figure(1, len(warmups), figsize=(5.0 * len(warmups), 3.8), sharey=True)
    for ax, warmup in zip(axes[0], warmups, strict=True):
        for norm in [n for n in NORMS if (n, warmup) in tracks]:
            values = np.asarray(tracks[(norm, warmup)], dtype=float)
            if values.shape[-1] != len(steps):
                raise ValueError(f"tracks[{(norm, warmup)!r}] must have {len(steps)} checkpoints, "
                                 f"got {values.shape[-1]}")
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns after a divergence
                low, mid, high = (np.nanmin(values, 0), np.nanmedian(values, 0), np.nanmax(values, 0))
            style = variant_style(norm)
            ax.fill_between(steps, low, high, color=style["color"], alpha=0.2, linewidth=0)
            ax.plot(steps, mid, label=f"{LABELS[norm]} ({values.shape[0]} seeds)", **style)
        if warmup:
            ax.axvline(warmup, color=color(7), linewidth=1, linestyle="--", label=f"end of warm-up (step {warmup})")
        if d_model:
            ax.axhline(np.sqrt(d_model), color=color(7), linewidth=1, linestyle="-.",
                       label=f"√d_model = {np.sqrt(d_model):.0f}")
        ax.set_yscale("log")
        label_axes(ax, title=f"Last block, lr {lr:g}, {_schedule(warmup)}", xlabel="training step",
                   ylabel="mean ‖residual vector‖ (log scale)")
    return fig


def early_steps_figure(runs: Mapping[str, Sequence[EarlySteps]], lr: float) -> Figure:
    """The first steps of training, per variant: loss, attention entropy of the last block,
    RMS change of the logits per step, gradient norm (median over seeds, min–max band)."""
    fig, axes = new_figure(1, 4, figsize=(15.0, 3.5))
    panels = (("losses", "training loss", "Loss"),
              ("entropy", "attention entropy, last block (nats)", "Attention entropy"),
              ("logit_change", "RMS change of the logits (log scale)", "How far one step moves the logits"),
              ("grad_norm", "‖gradient‖ (log scale)", "Gradient norm"))
    for ax, (name, ylabel, title) in zip(axes[0], panels, strict=True):
        for norm, seeds in runs.items():
            band = seed_band([getattr(r, name)[:, -1] if name == "entropy" else getattr(r, name)
                              for r in seeds])
            steps = np.arange(len(band.median)) + (0 if name == "entropy" else 1)
            style = variant_style(norm)
            ax.fill_between(steps, band.low, band.high, color=style["color"], alpha=0.2, linewidth=0)
            ax.plot(steps, band.median, label=f"{LABELS[norm]} ({len(seeds)} seeds)", **style)
        if name in ("logit_change", "grad_norm"):
            ax.set_yscale("log")
        label_axes(ax, title=f"{title}, lr {lr:g}", xlabel="training step", ylabel=ylabel)
    return fig
